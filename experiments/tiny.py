"""A seconds-long run for tests and smoke checks (copy, tiny model).

Arg: model=neural_gpu (any registered model: dngpu, gru, mlp...).

  python launch.py --config=experiments/tiny.py --workdir=/tmp/tiny
  python launch.py --config=experiments/tiny.py:model=gru --workdir=/tmp/tiny_gru
"""

from experiments import base


def get_config(arg=None):
  a = base.parse_arg(arg, model="neural_gpu")
  c = base.get_config(task="copy", model=a.model)
  for size_field in ("nmaps", "hidden", "width"):  # whichever size the model has
    if size_field in c.model:
      c.model[size_field] = 8
  c.train.update(num_steps=20, batch_size=8, max_length=9, log_every=5)
  c.curriculum.update(every_steps=10, start_length=4, bins=(5, 9))
  c.train.schedule_every = 10
  c.checkpoint.every_steps = 10
  c.eval.update(lengths=(9, 17), num_examples=(16, 8))
  return c
