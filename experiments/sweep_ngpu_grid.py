"""The NGPU hyper-parameter grid in miniature: a CPU-scale Neural GPU on badd and bmul.

The NGPU paper trained a 729-run grid and only a few runs reached 100% on 2000-bit operands. This
file sweeps the same kinds of knobs, two values each: parameter-sharing relaxation (1 or 6 copies),
gradient noise (off or on), recurrent dropout, and the curriculum threshold, on both binary tasks
(2^5 = 32 points). Each point is short by default (m = 12, 10-bit operands, 300 steps) and is then
tested on 10-bit and 100-bit operands (lengths 21 and 201).

  python launch.py --config=experiments/sweep_ngpu_grid.py --workdir=runs/ngpu_grid --sweep --parallel=2
  python launch.py --config=experiments/sweep_ngpu_grid.py:task=bmul --workdir=runs/ngpu_grid_bmul --sweep
  # shorter or longer, for every point (command-line overrides win over the points'):
  python launch.py --config=experiments/sweep_ngpu_grid.py --workdir=runs/ngpu_grid --sweep \
      --config.train.num_steps=2000 --config.model.nmaps=24

Arg: task=badd or task=bmul picks a single task; without it the task is a grid axis. Results land in
<workdir>/summary.md and summary.json; a re-run skips finished points and resumes the others.
"""

from experiments import base
from neural_gpu.sweep import grid

TASKS = ("badd", "bmul")


def get_config(arg=None):
  c = base.get_config(task=base.parse_arg(arg, task=TASKS[0]).task, model="neural_gpu")
  c.model.update(nmaps=12, dropout=0.0, relax_copies=1)
  c.train.update(num_steps=300, batch_size=16, max_length=21, log_every=25)
  c.curriculum.update(start_length=6, threshold=0.15, every_steps=50)
  c.checkpoint.every_steps = 100
  c.eval.update(lengths=(21, 201), num_examples=(128, 32))
  return c


def sweep(arg=None):
  fixed = base.parse_arg(arg, task="").task  # with task=..., get_config picked the task
  tasks = {} if fixed else {"task.name": list(TASKS)}
  return grid(tasks, {
      "model.relax_copies": [1, 6],
      "optimizer.grad_noise": [0.0, 1e-3],
      "model.dropout": [0.0, 0.1],
      "curriculum.threshold": [0.15, 0.3],
  })
