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


def test_error_positions_add_up_to_the_evaluation_on_the_same_examples(tmp_path):
  import pytest
  from neural_gpu import evaluate, workdir
  config = tiny.get_config()
  config.train.num_steps = config.checkpoint.every_steps = 4  # barely trained: many errors
  workdir.save_config(config, str(tmp_path))
  train.Trainer(config, str(tmp_path)).run()
  report = debug.error_positions(str(tmp_path), lengths=[9, 17], num_examples=12)
  evaluated = evaluate.evaluate_checkpoint(str(tmp_path), lengths=[9, 17], num_examples=12,
                                           progress=False)
  assert report["step"] == 4
  for r, e in zip(report["results"], evaluated["results"]):
    assert r["wrong_symbols"] == round(e["symbol_error"] * 12 * r["length"]) > 0
    assert sum(r["by_kind"].values()) == sum(r["by_offset"].values()) == r["wrong_symbols"]
    # copy's answer fills the whole length: no PAD is expected, nothing lies after its end
    assert r["by_kind"]["digit for PAD"] == 0
    assert sum(n for (lo, _, label) in debug.OFFSET_BUCKETS if lo > 0
               for n in [r["by_offset"][label]]) == 0
  with pytest.raises(ValueError, match="cannot evaluate"):
    debug.error_positions(str(tmp_path), lengths=[0])
  with pytest.raises(ValueError, match="num_examples must be >= 1"):
    debug.error_positions(str(tmp_path), lengths=[9], num_examples=0)
  with pytest.raises(ValueError, match="not a matmul precision"):
    debug.error_positions(str(tmp_path), lengths=[9], matmul_precision="bogus")


def test_error_positions_mark_a_length_the_model_cannot_run(tmp_path):
  from neural_gpu import workdir
  config = tiny.get_config("model=mlp")
  config.train.num_steps = config.checkpoint.every_steps = 2
  workdir.save_config(config, str(tmp_path))
  train.Trainer(config, str(tmp_path)).run()
  report = debug.error_positions(str(tmp_path), lengths=[9, 17], num_examples=4)
  assert report["results"][0]["num_examples"] == 4
  assert "not_applicable" in report["results"][1]
  assert "not applicable" in debug.format_error_positions(report).splitlines()[-1]
