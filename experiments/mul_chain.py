"""EXT's progressive multi-task training: bmul, then qmul, then decimal mul (the target task).

80% of steps train the first unsolved task, 20% a random unsolved one; each task has its own
length curriculum. Evaluation tests the last task (decimal multiplication).

Arg: chain=bmul+qmul+mul, the tasks in training order, joined by '+'.

  python launch.py --config=experiments/mul_chain.py --workdir=runs/mul_chain
  python launch.py --config=experiments/mul_chain.py:chain=badd+bmul --workdir=runs/add_mul_chain
"""

from experiments import base


def get_config(arg=None):
  a = base.parse_arg(arg, chain="bmul+qmul+mul")
  c = base.get_config(task=a.chain.replace("+", ","), model="neural_gpu")
  c.model.update(nmaps=48, relax_copies=6)
  c.curriculum.name = "chain"
  c.train.num_steps = 40000
  c.eval.update(lengths=(41, 401), num_examples=(256, 64))
  return c
