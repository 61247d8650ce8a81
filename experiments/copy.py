"""Copy with a Neural GPU (arg: neural_gpu or dngpu).

  python launch.py --config=experiments/copy.py:neural_gpu --workdir=runs/copy_ngpu
"""

from experiments import base


def get_config(arg=None):
  return base.get_config(task="copy", model=arg or "neural_gpu")
