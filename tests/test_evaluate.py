"""Evaluation counts every position, PAD included, and keeps results keyed by length."""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

import tasks
from neural_gpu import evaluate
from neural_gpu.models import ModelOutput


class Oracle(nn.Module):
  """Looks up the true target of each input row, but writes `junk` where the target is PAD."""
  answers: dict
  vocab: int
  junk: int = 0

  @nn.compact
  def __call__(self, inputs, lengths, train=False):
    self.param("unused", nn.initializers.zeros, ())

    def lookup(x):
      return np.stack([self.answers[row.tobytes()] for row in np.asarray(x, np.int32)])

    target = jax.pure_callback(lookup, jax.ShapeDtypeStruct(inputs.shape, jnp.int32), inputs)
    target = jnp.where(target == 0, self.junk, target)
    return ModelOutput(jax.nn.one_hot(target, self.vocab) * 10.0, {})


def test_perfect_model_has_zero_error_and_junk_on_pad_is_caught():
  task = tasks.get("search")  # targets are mostly PAD
  lengths, counts = [6, 9], [10, 6]
  answers = {}
  for length, count in zip(lengths, counts):
    batch = evaluate.batch_size_for(length, count)
    for i in range(-(-count // batch)):
      data = task.sample(evaluate.data_seed(0, evaluate.EVAL_STREAM, length, i), batch, length)
      answers.update({x.tobytes(): y for x, y in zip(data.inputs, data.targets)})
  for junk, expect_error in ((0, False), (1, True)):
    model = Oracle(answers, task.vocab_size, junk)
    variables = model.init(jax.random.key(0), data.inputs, jnp.full((batch,), 9))
    results = evaluate.evaluate_lengths(model, variables, task, lengths, counts, seed=0,
                                        progress=False)
    assert [r["length"] for r in results] == lengths
    assert [r["num_examples"] for r in results] == counts
    for r in results:
      if expect_error:
        assert r["sequence_error"] == 1.0 and r["symbol_error"] >= 0.5
      else:
        assert r["sequence_error"] == 0.0 and r["symbol_error"] == 0.0


def test_test_data_differs_from_training_data_and_is_reproducible():
  a = evaluate.data_seed(0, evaluate.EVAL_STREAM, 41, 0)
  assert a == evaluate.data_seed(0, evaluate.EVAL_STREAM, 41, 0)
  assert a != evaluate.data_seed(0, 0, 41, 0) and a != evaluate.data_seed(1, 1, 41, 0)


def test_invalid_length_is_rejected_before_any_work():
  task = tasks.get("badd")
  with pytest.raises(ValueError, match=r"cannot evaluate badd at length 40: badd needs odd "
                     r"length >= 3 \(valid up to it: ...\[35, 37, 39\]\)"):
    evaluate.evaluate_lengths(None, None, task, [41, 40], 4, seed=0, progress=False)
  with pytest.raises(ValueError, match=r"at length 1: badd needs length >= 2$"):  # none valid
    evaluate.evaluate_lengths(None, None, tasks.get("badd", layout="stacked"), [1], 4, seed=0,
                              progress=False)
  with pytest.raises(ValueError, match="num_examples must be >= 1"):
    evaluate.evaluate_lengths(None, None, task, [41, 401], [8, 0], seed=0, progress=False)


def test_long_lengths_use_small_batches():
  assert evaluate.batch_size_for(41, 256) == 64
  assert evaluate.batch_size_for(4001, 256) == 16
  assert evaluate.batch_size_for(4001, 8) == 8


def test_hard_test_sets_are_sampled_from_the_hard_generator():
  task = tasks.get("badd")
  length, count = 9, 8
  batch = evaluate.batch_size_for(length, count)
  hard = task.sample_hard(evaluate.data_seed(0, evaluate.EVAL_STREAM, length, 0, 1), batch,
                          length, "carry")
  answers = {x.tobytes(): y for x, y in zip(hard.inputs, hard.targets)}
  model = Oracle(answers, task.vocab_size)
  variables = model.init(jax.random.key(0), hard.inputs, jnp.full((batch,), length))
  [result] = evaluate.evaluate_lengths(model, variables, task, [length], count, seed=0,
                                       progress=False, kind="carry")
  assert result == {"length": length, "num_examples": count, "sequence_error": 0.0,
                    "symbol_error": 0.0}
  with pytest.raises(ValueError, match="badd has no hard test set 'bogus'; valid: carry"):
    evaluate.evaluate_lengths(model, variables, task, [length], count, seed=0, kind="bogus")


def test_table_lists_hard_sets_by_kind():
  row = {"length": 41, "num_examples": 8, "sequence_error": 0.5, "symbol_error": 0.01}
  report = {"step": 3, "task": "badd", "model": "dngpu", "train_max_length": 41,
            "results": [row], "hard": [{"kind": "carry", **row}]}
  lines = evaluate.format_table(report).splitlines()
  assert lines[-2].split()[0] == "kind" and lines[-1].split()[:2] == ["carry", "41"]
  assert lines[0] == "dngpu on badd at step 3 (train.max_length 41)"
  # a stacked L=41 holds other operands than a sequential L=41: the header says which
  lines = evaluate.format_table({**report, "task_params": {"layout": "stacked"}}).splitlines()
  assert lines[0] == "dngpu on badd (layout=stacked) at step 3 (train.max_length 41)"


def test_a_later_evaluation_of_the_same_step_adds_to_its_report(tmp_path):
  row = lambda length, err: {"length": length, "num_examples": 4, "sequence_error": err,
                             "symbol_error": err / 10}
  head = {"step": 7, "task": "badd", "model": "dngpu", "train_max_length": 41}
  evaluate.write_report(str(tmp_path), {**head, "results": [row(41, 0.0), row(401, 0.5)],
                                        "hard": [{"kind": "carry", **row(41, 0.25)}]})
  merged = evaluate.write_report(str(tmp_path), {**head, "results": [row(101, 0.1), row(401, 0.2)]})
  with open(tmp_path / "eval" / "step_7.json") as f:
    assert json.load(f) == merged
  assert merged["results"] == [row(41, 0.0), row(101, 0.1), row(401, 0.2)]
  assert merged["hard"] == [{"kind": "carry", **row(41, 0.25)}]


def test_eval_num_examples_given_once_counts_at_every_length():
  copy = tasks.get("copy")
  assert evaluate.check_request(copy, [9, 17, 33], (64,)) == [64, 64, 64]
  assert evaluate.check_request(copy, [9, 17], 64) == [64, 64]
  assert evaluate.check_request(copy, [9, 17], (16, 8)) == [16, 8]
  with pytest.raises(ValueError, match="num_examples has 2 entries for 3 lengths"):
    evaluate.check_request(copy, [9, 17, 33], (16, 8))


def test_evaluate_checkpoint_restores_from_the_config_alone(tmp_path, monkeypatch):
  """The run folder's config and checkpoint are enough: no trainer is built, and the restored
  parameters are the trained ones."""
  from experiments import tiny
  from neural_gpu import train, workdir

  config = tiny.get_config()
  config.train.num_steps = config.checkpoint.every_steps = 4
  workdir.save_config(config, str(tmp_path))
  trained = train.Trainer(config, str(tmp_path)).run()
  monkeypatch.setattr(train, "Trainer", None)  # evaluation must not need it
  run = evaluate.restore_checkpoint(workdir.load_config(str(tmp_path)), str(tmp_path))
  assert run.step == 4 and run.max_length == config.train.max_length
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(run.state.params),
               jax.device_get(trained.params))
  report = evaluate.evaluate_checkpoint(str(tmp_path), lengths=[9], num_examples=8,
                                        progress=False)
  variables = {"params": run.state.params}
  expected = evaluate.evaluate_lengths(run.model, variables, run.task, [9], 8, config.seed,
                                       progress=False)
  assert report["results"] == expected and report["step"] == 4
  assert (tmp_path / workdir.EVAL / "step_4.json").exists()
  with pytest.raises(workdir.TrainingError, match="no checkpoint for step 3"):
    evaluate.restore_checkpoint(config, str(tmp_path), step=3)
  with pytest.raises(workdir.TrainingError, match="no checkpoint in"):
    evaluate.restore_checkpoint(config, str(tmp_path), best=True)


def test_mc_dropout_is_the_argmax_of_the_mean_softmax_of_dropout_passes():
  """eval.mc_dropout_samples: K passes with the candidate's dropout, example b's pass i keyed
  fold_in(fold_in(key, rows[b]), i); the prediction is the argmax of their mean softmax."""
  from neural_gpu.models import dngpu
  task = tasks.get("badd")
  model = dngpu.DNGPU(task.vocab_size, nmaps=6, dropout=0.5, input_dropout=0.5)
  data = task.sample(3, 16, 9)
  lengths = jnp.full((16,), 9, jnp.int32)
  variables = model.init(jax.random.key(0), data.inputs, lengths)
  key, rows = jax.random.key(7), jnp.arange(100, 116)

  def one_pass(i):  # example by example, each with its own key
    return jnp.concatenate([jax.nn.softmax(model.apply(
        variables, data.inputs[b:b + 1], lengths[b:b + 1], mc_dropout=True,
        rngs={"dropout": jax.random.fold_in(jax.random.fold_in(key, rows[b]), i)}).logits)
        for b in range(16)])

  probs = [one_pass(i) for i in range(3)]
  assert not np.allclose(probs[0], probs[1])  # the passes differ: dropout is on
  for k in (1, 3):
    wrong = np.asarray(jnp.argmax(sum(probs[:k]) / k, -1)) != data.targets
    any_wrong, num_wrong = evaluate.make_error_fn(model, mc_samples=k)(
        variables, data.inputs, data.targets, lengths, key, rows)
    np.testing.assert_array_equal(any_wrong, wrong.any(1))
    np.testing.assert_array_equal(num_wrong, wrong.sum(1))
  deterministic = model.apply(variables, data.inputs, lengths).logits  # the input read whole:
  no_cand_dropout = model.clone(dropout=0.0).apply(variables, data.inputs, lengths,
                                                   mc_dropout=True, rngs={"dropout": key})
  np.testing.assert_array_equal(deterministic, no_cand_dropout.logits)


def test_mc_dropout_needs_a_model_trained_with_dropout():
  from neural_gpu.models import dngpu
  evaluate.check_mc_dropout(object(), 0)  # off: any model
  with pytest.raises(ValueError, match="trained without dropout"):
    evaluate.make_error_fn(dngpu.DNGPU(4, nmaps=6), mc_samples=4)
  with pytest.raises(ValueError, match="needs a model with candidate dropout"):
    evaluate.make_error_fn(Oracle({}, 4), mc_samples=4)
  with pytest.raises(ValueError, match=">= 0"):
    evaluate.check_mc_dropout(dngpu.DNGPU(4, nmaps=6, dropout=0.5), -1)


def test_mc_dropout_report_is_kept_beside_the_deterministic_one(tmp_path):
  base = {"step": 5, "task": "badd", "model": "dngpu", "train_max_length": 41}
  row = lambda length, err: {"length": length, "num_examples": 8, "sequence_error": err,
                             "symbol_error": err / 10}
  evaluate.write_report(str(tmp_path), {**base, "results": [row(41, 0.5)],
                                        "mc_dropout_samples": 8, "mc_results": [row(41, 0.0)]})
  report = evaluate.write_report(str(tmp_path), {**base, "results": [row(101, 1.0)]})
  assert [r["length"] for r in report["results"]] == [41, 101]  # merged
  assert report["mc_dropout_samples"] == 8 and report["mc_results"] == [row(41, 0.0)]  # kept
  report = evaluate.write_report(str(tmp_path), {**base, "results": [row(41, 0.5)],
                                                 "mc_dropout_samples": 4,
                                                 "mc_results": [row(101, 0.25)]})
  assert report["mc_dropout_samples"] == 4 and report["mc_results"] == [row(101, 0.25)]
  text = evaluate.format_table(report)
  assert "Monte Carlo dropout, mean of 4 passes:" in text and "0.2500" in text


def test_mc_dropout_masks_follow_the_example_not_its_batch():
  """Each example's masks come from its index in the test stream: split into other batches (as
  other batch sizes or device counts do), every example gets the same prediction."""
  from neural_gpu.models import dngpu
  task = tasks.get("badd")
  model = dngpu.DNGPU(task.vocab_size, nmaps=6, dropout=0.5)
  data = task.sample(5, 12, 9)
  lengths = np.full((12,), 9, np.int32)
  variables = model.init(jax.random.key(1), data.inputs, lengths)
  error_fn, key = evaluate.make_error_fn(model, mc_samples=2), jax.random.key(3)
  count = lambda s: evaluate.count_errors(error_fn, variables, data.inputs[s], data.targets[s],
                                          lengths[s], key=key, rows=np.arange(12)[s])[1]
  whole = count(slice(0, 12))
  np.testing.assert_array_equal(np.concatenate([count(slice(0, 5)), count(slice(5, 12))]), whole)
  assert 0 < whole.sum() < 12 * 9  # a real count, not all or nothing
  other = evaluate.count_errors(error_fn, variables, data.inputs, data.targets, lengths, key=key,
                                rows=np.arange(12) + 1)[1]
  assert not np.array_equal(other, whole)  # the index does choose the masks


def dot_precisions(hlo: str) -> list[str]:
  """The precision of every dot and convolution in a lowered program's StableHLO text."""
  return re.findall(r"precision = \[(\w+), \1\]", hlo)


def test_matmul_precision_is_one_of_jax_names_or_a_one_line_error():
  from neural_gpu.models import dngpu
  for name in evaluate.MATMUL_PRECISIONS:
    evaluate.check_matmul_precision(name)
  with pytest.raises(ValueError, match=r"eval.matmul_precision='fp16' is not a matmul precision; "
                     r"valid: highest, float32, high,") as e:
    evaluate.make_error_fn(dngpu.DNGPU(4, nmaps=6), matmul_precision="fp16")
  assert "\n" not in str(e.value)


def test_matmul_precision_reaches_every_dot_of_the_compiled_program():
  """The setting is in the lowered program, not just accepted: "highest" marks every dot of
  the DNGPU's time loop HIGHEST, "default" none, the bf16 preset asks for bf16 operands."""
  from neural_gpu.models import dngpu
  task = tasks.get("badd")
  model = dngpu.DNGPU(task.vocab_size, nmaps=6)
  data = task.sample(3, 4, 9)
  lengths = jnp.full((4,), 9, jnp.int32)
  variables = model.init(jax.random.key(0), data.inputs, lengths)
  lowered = {p: evaluate.make_error_fn(model, matmul_precision=p).lower(
      variables, data.inputs, data.targets, lengths).as_text()
      for p in ("highest", "default", "BF16_BF16_F32")}
  assert len(dot_precisions(lowered["highest"])) >= 3  # gates, candidate, readout at least
  assert set(dot_precisions(lowered["highest"])) == {"HIGHEST"}
  assert set(dot_precisions(lowered["default"])) == {"DEFAULT"}
  assert "lhs_precision_type = bf16" in lowered["BF16_BF16_F32"]
  assert "lhs_precision_type" not in lowered["highest"]


def test_every_matmul_precision_gives_the_same_errors_on_the_cpu(tmp_path):
  """XLA:CPU computes every precision in float32: a trained model's error counts agree exactly
  (on a GPU they may not: benchmarks/gpu_session.py compares them there)."""
  from experiments import tiny
  from neural_gpu import train, workdir

  config = tiny.get_config()
  config.train.num_steps = config.checkpoint.every_steps = 20
  workdir.save_config(config, str(tmp_path))
  train.Trainer(config, str(tmp_path)).run()
  run = evaluate.restore_checkpoint(config, str(tmp_path))
  variables = {"params": run.state.params, **run.state.model_state}
  counts = {}
  for precision in evaluate.MATMUL_PRECISIONS:
    error_fn = evaluate.make_error_fn(run.model, matmul_precision=precision)
    batch = evaluate.eval_batch(run.task, config.seed, evaluate.EVAL_STREAM, 17, 0, 16)
    counts[precision] = [a.tolist() for a in evaluate.count_errors(
        error_fn, variables, batch.inputs, batch.targets, np.full((16,), 17, np.int32))]
  assert 0 < sum(counts["highest"][1]) < 16 * 17  # a real count, not all or nothing
  assert all(c == counts["highest"] for c in counts.values()), counts
