"""Curricula: the NGPU rule's draws and advances, DNGPU bins, buckets."""

import numpy as np
import ml_collections
import pytest

import tasks
from neural_gpu import curriculum


def make(name, task="badd", max_length=41, **params):
  return curriculum.get(ml_collections.ConfigDict(dict(name=name, **params)), tasks.get(task),
                        max_length)


def test_ngpu_rule_draws_valid_lengths_up_to_current_and_sometimes_beyond():
  c = make("ngpu", start_length=7)
  state = c.init_state()
  assert state == {"length": 7}
  rng = np.random.default_rng(0)
  draws = [c.lengths(state, rng)[0] for _ in range(2000)]
  assert all(l % 2 == 1 and 3 <= l <= 41 for l in draws)
  beyond = np.mean([l > 7 for l in draws])
  assert 0.1 < beyond < 0.25  # only the p=0.25 long draw can exceed the current length
  assert np.mean([l == 7 for l in draws]) > 0.2  # 1 in 5 for one draw; the max of two favours it


def test_ngpu_rule_advances_only_below_threshold_and_stops_at_max():
  c = make("ngpu", start_length=39, threshold=0.15)
  state = c.init_state()
  state, advanced = c.decide(state, 0.2)
  assert not advanced and state["length"] == 39
  state, advanced = c.decide(state, 0.1)
  assert advanced and state["length"] == 41 and c.at_max(state)
  state, advanced = c.decide(state, 0.0)
  assert not advanced and state["length"] == 41


def test_all_bins_snap_to_valid_lengths_and_include_the_maximum():
  c = make("all_bins", bins=(8, 12, 16, 20, 25, 28, 31, 36, 41))
  assert c.lengths(c.init_state(), np.random.default_rng(0)) == [7, 11, 15, 19, 25, 27, 31, 35, 41]
  copy = make("all_bins", task="copy", max_length=30, bins=(8, 12, 41))
  assert copy.lengths(copy.init_state(), None) == [8, 12, 30]


def test_buckets_pad_up_and_never_below():
  buckets = curriculum.make_buckets(41, [7, 11])
  assert buckets[-1] == 41 and 40 in buckets and 48 not in buckets
  assert curriculum.bucket_for(9, buckets) == 11
  assert curriculum.bucket_for(41, buckets) == 41
  assert curriculum.bucket_for(401, buckets) == 401


def test_unknown_curriculum_lists_valid_ones():
  with pytest.raises(ValueError, match="valid curricula: all_bins, fixed, ngpu"):
    make("cosine")
