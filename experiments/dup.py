"""Dup with a Neural GPU (arg: neural_gpu or dngpu).

  python launch.py --config=experiments/dup.py:neural_gpu --workdir=runs/dup_ngpu
"""

from experiments import base


def get_config(arg=None):
  return base.get_config(task="dup", model=arg or "neural_gpu")
