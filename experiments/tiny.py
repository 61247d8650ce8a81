"""A seconds-long run for tests and smoke checks (copy, tiny model).

  python launch.py --config=experiments/tiny.py --workdir=/tmp/tiny
"""

from experiments import base


def get_config(arg=None):
  c = base.get_config(task="copy", model=arg or "neural_gpu")
  c.model.nmaps = 8
  c.train.update(num_steps=20, batch_size=8, max_length=9, log_every=5)
  c.curriculum.update(every_steps=10, start_length=4, bins=(5, 9))
  c.train.schedule_every = 10
  c.checkpoint.every_steps = 10
  c.eval.update(lengths=(9, 17), num_examples=(16, 8))
  return c
