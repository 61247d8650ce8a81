"""Binary long multiplication, 20-bit operands (length 41) (arg: neural_gpu or dngpu).

The papers' sizes: the DNGPU used m=96, the Neural GPU m=24 with relaxation (r=6), which the
NGPU paper calls crucial for multiplication.

  python launch.py --config=experiments/bmul.py:dngpu --workdir=runs/bmul_dngpu
  python launch.py --config=experiments/bmul.py:neural_gpu --workdir=runs/bmul_ngpu
"""

from experiments import base


def get_config(arg=None):
  model = arg or "dngpu"
  c = base.get_config(task="bmul", model=model)
  if model == "dngpu":
    c.model.nmaps = 96
    c.optimizer.learning_rate = 0.01 * 48 / 96
  else:
    c.model.relax_copies = 6
  c.train.num_steps = 20000
  c.eval.update(lengths=(41, 401, 4001), num_examples=(256, 256, 8))
  return c
