"""Reverse with a Neural GPU (arg: neural_gpu or dngpu).

  python launch.py --config=experiments/reverse.py:neural_gpu --workdir=runs/reverse_ngpu
"""

from experiments import base


def get_config(arg=None):
  return base.get_config(task="reverse", model=arg or "neural_gpu")
