"""Debugging aids: the finite-difference gradient check and the overfit-one-batch switch."""

import numpy as np

from experiments import tiny
from neural_gpu import debug, train


def test_gradient_check_passes_for_a_real_model():
  result = debug.gradient_check(tiny.get_config("model=dngpu"), num_directions=2)
  assert result["ok"] and result["max_relative_error"] < 1e-5


def test_overfit_one_batch_repeats_the_first_batch(tmp_path):
  config = tiny.get_config()
  trainer = train.Trainer(config, str(tmp_path))
  host = trainer.init_host()
  assert not np.array_equal(trainer.batches(0, host)[0][0], trainer.batches(7, host)[0][0])
  config.train.overfit_one_batch = True
  trainer = train.Trainer(config, str(tmp_path))
  for a, b in zip(trainer.batches(0, host)[0], trainer.batches(7, host)[0]):
    np.testing.assert_array_equal(a, b)
