"""Curricula compared: the NGPU length schedule, all length bins every step (DNGPU), and none.

Same model and budget for each curriculum, on badd and bmul, two seeds each (12 points; m = 12,
10-bit operands, 400 steps), tested on 10- and 100-bit operands (lengths 21 and 201).

  python launch.py --config=experiments/sweep_curricula.py --workdir=runs/curricula --sweep --parallel=2
  python launch.py --config=experiments/sweep_curricula.py:model=dngpu --workdir=runs/curricula_dngpu --sweep

Arg: model=neural_gpu (or dngpu). The curriculum section holds
the fields every curriculum reads, so each point differs only in curriculum.name; fields a
curriculum does not use are ignored. Results: <workdir>/summary.md and summary.json.
"""

from experiments import base
from neural_gpu.sweep import grid

CURRICULA = ("ngpu", "all_bins", "fixed")


def get_config(arg=None):
  model = base.parse_arg(arg, model="neural_gpu").model
  c = base.get_config(task="badd", model=model)
  if model == "dngpu":  # fresh examples of one length per bin: the form every curriculum takes
    base.exact_length_protocol(c)
  c.model.nmaps = 12
  c.train.update(num_steps=400, batch_size=16, max_length=21, log_every=25)
  c.curriculum.update(name="ngpu", start_length=6, min_length=3, threshold=0.15, every_steps=50,
                      bins=(7, 11, 15, 21))
  c.checkpoint.every_steps = 100
  c.eval.update(lengths=(21, 201), num_examples=(128, 32))
  return c


def sweep(arg=None):
  del arg  # the model is fixed by get_config(arg); the points vary the rest
  return grid({
      "curriculum.name": list(CURRICULA),
      "task.name": ["badd", "bmul"],
      "seed": [0, 1],
  })
