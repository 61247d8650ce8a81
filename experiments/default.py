"""The default experiment: the improved Neural GPU learns binary addition on a 2-core CPU.

Trains on 20-bit operands (length 41, all length bins every step), then tests on 41, 401 (10x)
and 4001 (100x, a small sample).

  python launch.py                       # this file, into runs/default
  python launch.py --config=experiments/default.py --workdir=runs/default
"""

from experiments import base


def get_config(arg=None):
  c = base.get_config(task="badd", model="dngpu")
  c.model.nmaps = 48
  c.train.num_steps = 1500
  c.checkpoint.every_steps = 100
  c.eval.lengths = (41, 401, 4001)
  c.eval.num_examples = (256, 256, 8)
  return c
