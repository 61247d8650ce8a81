"""The training input pipeline: the DNGPU reference's mixed-length bins and finite pools."""

import numpy as np
import pytest

from experiments import badd_reference
from neural_gpu import input_pipeline, train


def reference_trainer(tmp_path, pool_size=200, **train_fields):
  config = badd_reference.get_config()
  config.model.nmaps = 6
  config.train.update(pool_size=pool_size, batch_size=16, **train_fields)
  return train.Trainer(config, str(tmp_path))


def test_a_bin_holds_every_length_up_to_its_width(tmp_path):
  trainer = reference_trainer(tmp_path)
  batches = trainer.batches(0, trainer.init_host())
  widths = [b.inputs.shape[1] for b in batches]
  assert widths == [8, 12, 16, 20, 25, 28, 31, 36, 41]
  top = batches[-1]
  assert set(top.lengths.tolist()) <= set(range(3, 42, 2))
  assert len(set(top.lengths.tolist())) >= 2  # mixed: 37, 39 and 41 (and 5% shorter items)
  for b in batches:
    for row, length in enumerate(b.lengths):
      assert np.all(b.inputs[row, length:] == 0) and np.all(b.targets[row, length:] == 0)
      assert np.all(b.inputs[row, :length] > 0)


def test_pool_is_unique_per_length_and_holds_the_reference_share_of_shorter_items(tmp_path):
  trainer = reference_trainer(tmp_path, pool_size=100)
  trainer.batches(0, trainer.init_host())
  pools = trainer.pipeline._pools
  # badd L=3 has 4 distinct inputs, L=5 16, L=7 64: a pool of 100 holds all of them.
  eight = pools[8]
  assert sorted(np.unique(eight.lengths, return_counts=True)[1].tolist()) == [4, 16, 64]
  assert len(np.unique(eight.inputs, axis=0)) == len(eight.lengths)
  top = pools[41]
  own = np.isin(top.lengths, (37, 39, 41))
  assert own.sum() == 300 and (~own).sum() == 15  # 5% extra items from smaller bins
  for length in (37, 39, 41):
    rows = top.inputs[top.lengths == length]
    assert len(np.unique(rows, axis=0)) == 100


def test_pool_reads_every_item_once_per_pass_and_resumes_at_any_step(tmp_path):
  trainer = reference_trainer(tmp_path, pool_size=20)
  host = trainer.init_host()
  first = [trainer.batches(step, host)[0] for step in range(12)]
  size = len(trainer.pipeline._pools[8].lengths)  # 4 + 16 + 20 = 40 items: 2.5 steps a pass
  assert size == 40
  seen = np.concatenate([b.inputs for b in first])[:size]
  assert len(np.unique(seen, axis=0)) == size  # one pass = every item once
  fresh = reference_trainer(tmp_path, pool_size=20)  # a resumed run rebuilds the same pool
  again = fresh.batches(7, fresh.init_host())[0]
  np.testing.assert_array_equal(again.inputs, first[7].inputs)
  np.testing.assert_array_equal(again.lengths, first[7].lengths)


def test_fresh_mixed_bins_draw_each_length_of_the_bin(tmp_path):
  trainer = reference_trainer(tmp_path, pool_size=0)
  top = trainer.batches(5, trainer.init_host())[-1]
  assert set(top.lengths.tolist()) >= {37, 39, 41}
  assert top.inputs.shape == (16, 41)


def test_pool_refuses_other_curricula_and_hard_examples(tmp_path):
  config = badd_reference.get_config()
  config.curriculum.name = "ngpu"
  with pytest.raises(ValueError, match="pool_size=10000 needs curriculum.name=all_bins"):
    train.Trainer(config, str(tmp_path))
  config = badd_reference.get_config()
  config.train.update(hard_fraction=0.25)
  with pytest.raises(ValueError, match="cannot mix in hard examples"):
    train.Trainer(config, str(tmp_path))


def test_exact_length_protocol_keeps_the_earlier_batches(tmp_path):
  """The protocol of the runs measured before the reference's: one length per bin, fresh."""
  from experiments import badd_cpu
  trainer = train.Trainer(badd_cpu.get_config(), str(tmp_path))
  batches = trainer.batches(0, trainer.init_host())
  assert [b.inputs.shape[1] for b in batches] == [7, 11, 15, 19, 25, 27, 31, 35, 41]
  for b in batches:
    assert np.all(b.lengths == b.inputs.shape[1])
  seed = input_pipeline.data_seed(0, input_pipeline.TRAIN_STREAM, 0)
  row_seed = tuple(np.random.default_rng(seed).integers(0, 2**31, 2))
  expected = trainer.task.sample(row_seed, 32, 7)
  np.testing.assert_array_equal(batches[0].inputs, expected.inputs)


def test_unique_examples_stops_when_a_length_has_no_more():
  from tasks import get
  inputs, targets = input_pipeline.unique_examples(get("badd"), 0, 5, 1000)
  assert inputs.shape == (16, 5) and len(np.unique(inputs, axis=0)) == 16
