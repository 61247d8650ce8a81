"""Binary addition, 20-bit operands (length 41), tested up to 100x (arg: neural_gpu or dngpu).

  python launch.py --config=experiments/badd.py:dngpu --workdir=runs/badd_dngpu
  python launch.py --config=experiments/badd.py:neural_gpu --workdir=runs/badd_ngpu
"""

from experiments import base


def get_config(arg=None):
  c = base.get_config(task="badd", model=arg or "dngpu")
  c.eval.update(lengths=(41, 401, 4001), num_examples=(256, 256, 8))
  return c
