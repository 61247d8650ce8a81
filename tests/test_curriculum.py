"""Curricula: the NGPU rule's draws and advances, DNGPU bins, buckets."""

import numpy as np
import pytest

import tasks
from experiments import base
from neural_gpu import curriculum


def make(name, task="badd", max_length=41, **params):
  """Curriculum `name` from the base config's curriculum section with `params` changed."""
  config = base.get_config().curriculum
  config.update(name=name, **params)
  return curriculum.get(config, tasks.get(task), max_length)


def test_ngpu_rule_draws_valid_lengths_up_to_current_and_sometimes_beyond():
  c = make("ngpu", start_length=7)
  state = c.init_state()
  assert state == {"length": 7}
  rng = np.random.default_rng(0)
  draws = [c.draws(state, rng)[0][1] for _ in range(2000)]
  assert all(l % 2 == 1 and 3 <= l <= 41 for l in draws)
  beyond = np.mean([l > 7 for l in draws])
  assert 0.1 < beyond < 0.25  # only the p=0.25 long draw can exceed the current length
  assert np.mean([l == 7 for l in draws]) > 0.2  # 1 in 5 for one draw; the max of two favours it


def test_ngpu_rule_advances_only_below_threshold_and_stops_at_max():
  c = make("ngpu", start_length=39, threshold=0.15)
  state = c.init_state()
  state, advanced = c.decide(state, [0.2])
  assert not advanced and state["length"] == 39
  state, advanced = c.decide(state, [0.1])
  assert advanced and state["length"] == 41 and c.at_max(state)
  state, advanced = c.decide(state, [0.0])
  assert not advanced and state["length"] == 41


def test_all_bins_snap_to_valid_lengths_and_include_the_maximum():
  c = make("all_bins", bins=(8, 12, 16, 20, 25, 28, 31, 36, 41))
  lengths = [l for _, l in c.draws(c.init_state(), np.random.default_rng(0))]
  assert lengths == [7, 11, 15, 19, 25, 27, 31, 35, 41]
  copy = make("all_bins", task="copy", max_length=30, bins=(8, 12, 41))
  assert copy.draws(copy.init_state(), None) == [(0, 8), (0, 12), (0, 30)]


def test_buckets_pad_up_and_never_below():
  buckets = curriculum.make_buckets(41, [7, 11])
  assert buckets[-1] == 41 and 40 in buckets and 48 not in buckets
  assert curriculum.bucket_for(9, buckets) == 11
  assert curriculum.bucket_for(41, buckets) == 41
  assert curriculum.bucket_for(401, buckets) == 401


def test_chain_trains_the_first_unsolved_task_mostly_and_moves_on():
  c = make("chain", task="badd,qadd,add", max_length=9, start_length=7, threshold=0.15)
  state = c.init_state()
  rng = np.random.default_rng(0)
  picks = [c.draws(state, rng)[0][0] for _ in range(1000)]
  assert 0.85 < np.mean([p == 0 for p in picks]) < 0.95  # 80% + a third of the random 20%
  state, advanced = c.decide(state, [0.1, 0.5, 0.5])
  assert advanced and state["lengths"] == [9, 7, 7] and not state["solved"][0]
  state, _ = c.decide(state, [0.1, 0.5, 0.5])
  assert state["solved"] == [True, False, False]
  assert {c.draws(state, rng)[0][0] for _ in range(200)} == {1, 2}
  assert c.probes(state) == [(1, 7), (2, 7)]
  assert not c.at_max(state)


def test_chain_shares_one_vocabulary_and_evaluates_the_last_task():
  chain = tasks.get("bmul,qmul,mul")
  assert chain.symbols[0] == "_" and len(chain.symbols) == len(set(chain.symbols)) == 12
  batch = chain.subtasks[0].sample(0, 4, 9)
  text = chain.decode(batch.inputs[0])
  a, b = text.split("*")
  assert int(chain.decode(batch.targets[0])[::-1], 2) == int(a[::-1], 2) * int(b[::-1], 2)
  last = chain.sample(1, 4, 9)
  a, b = chain.decode(last.inputs[0]).split("*")
  assert int(chain.decode(last.targets[0])[::-1]) == int(a[::-1]) * int(b[::-1])
  with pytest.raises(ValueError, match="chain curriculum needs a task chain"):
    make("chain", task="badd")


def test_unknown_curriculum_lists_valid_ones():
  with pytest.raises(ValueError, match="valid curricula: all_bins, chain, fixed, ngpu"):
    make("cosine")


@pytest.mark.parametrize("chain,max_length,expect_max", [
    ("badd,incr", 9, 9), ("incr,badd", 10, 9), ("copy,bmul,dup", 12, 11)])
def test_chain_draws_and_steps_only_lengths_valid_for_their_member(chain, max_length, expect_max):
  c = make("chain", task=chain, max_length=max_length, start_length=4, min_length=1,
           threshold=0.5)
  members = c.task.subtasks
  assert c.max_length == expect_max and all(t.is_valid_length(expect_max) for t in members)
  state = c.init_state()
  rng = np.random.default_rng(0)
  for _ in range(30):  # draw, then advance every member by one of its own valid lengths
    for _ in range(40):
      (index, length), = c.draws(state, rng)
      assert members[index].is_valid_length(length), (members[index].name, length)
      assert length <= c.max_length
    assert all(members[i].is_valid_length(l) for i, l in c.probes(state))
    state, _ = c.decide(state, [0.0] * len(c.probes(state)))
  assert state["solved"] == [True] * len(members)


@pytest.mark.parametrize("name", ["ngpu", "fixed", "all_bins"])
def test_a_chain_under_another_curriculum_is_refused(name):
  with pytest.raises(ValueError, match="needs curriculum.name=chain"):
    make(name, task="bmul,qmul,mul")


def test_a_chain_without_a_common_length_is_refused():
  with pytest.raises(ValueError, match="no length <= train.max_length=9 is valid for every task"):
    make("chain", task="badd,xor", max_length=9)
