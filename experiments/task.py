"""One algorithmic task with one model, at the papers' sizes (scaled to a CPU where they say so).

Arg (named, comma-separated; all optional):
  task=badd     copy, reverse, dup, badd, bmul, or any task of tasks/ (TASKS below: what each
                sets beyond experiments/base.py)
  model=dngpu   dngpu, neural_gpu, or any registered model (gru, lstm, mlp...)
  layout=sequential  arithmetic: 'stacked' gives each digit pair (a_i, b_i) one
                cell (tasks/arithmetic.py). A stacked sum of 20-digit operands has L = 21, so
                badd, qadd and add then train to 21 and test at 201 and 2001 (10x and 100x the
                operand length); a stacked product keeps L = 2k+1 (41, 401, 4001).

badd and bmul train on 20-bit operands (length 41) and test up to 100x (4001). For bmul the papers'
sizes: the DNGPU used m=96 (lr 0.01 * 48 / m), the Neural GPU m=24 with relaxation (r=6), which
the NGPU paper calls crucial for multiplication.

  python launch.py --config=experiments/task.py:task=badd,model=dngpu --workdir=runs/badd_dngpu
  python launch.py --config=experiments/task.py:task=badd,model=neural_gpu --workdir=runs/badd_ngpu
  python launch.py --config=experiments/task.py:task=bmul,model=dngpu --workdir=runs/bmul_dngpu
  python launch.py --config=experiments/task.py:task=copy,model=neural_gpu --workdir=runs/copy_ngpu
  python launch.py --config=experiments/task.py:task=bmul,layout=stacked --workdir=runs/bmul_stacked
"""

from experiments import base

LONG_TEST = dict(lengths=(41, 401, 4001), num_examples=(256, 256, 8))  # 1x, 10x, 100x


def get_config(arg=None):
  a = base.parse_arg(arg, task="badd", model="dngpu", layout="sequential")
  layout = {} if a.layout == "sequential" else {"layout": a.layout}  # others: no such parameter
  c = base.get_config(task=a.task, model=a.model, **layout)
  if a.task in ("badd", "bmul"):
    c.eval.update(**LONG_TEST)
  if a.task in ("badd", "qadd", "add") and layout:  # a stacked sum: 20 digits in L = 21 cells
    c.train.max_length = 21
    c.eval.update(lengths=(21, 201, 2001), num_examples=(256, 256, 8))
  if a.task == "bmul":
    c.train.num_steps = 20000
    if a.model == "dngpu":
      c.model.nmaps = 96
      c.optimizer.learning_rate = 0.01 * 48 / c.model.nmaps
    elif a.model == "neural_gpu":
      c.model.relax_copies = 6
  return c
