"""The trainer end to end on a tiny config: schema, resume after SIGKILL, determinism, compiles."""

import json
import os
import signal
import subprocess
import sys
import time

import chex
import jax
import numpy as np
import pytest

from experiments import tiny
from neural_gpu import checkpoint as ckpt_lib
from neural_gpu import evaluate, train, workdir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def launch(*args, timeout=300):
  return subprocess.run([sys.executable, os.path.join(ROOT, "launch.py"), *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout)


def final_params(workdir):
  config = train.load_config(workdir)
  trainer = train.Trainer(config, workdir)
  checkpoints = ckpt_lib.Checkpointer(workdir, create=False)
  state, host = checkpoints.restore(checkpoints.latest_step(), trainer.init_state())
  checkpoints.close()
  return int(state.step), jax.device_get(state.params), host


def check_report_schema(report, config):
  assert set(report) == {"step", "task", "task_params", "model", "train_max_length",
                         "matmul_precision", "results"}
  assert report["matmul_precision"] == config.eval.matmul_precision
  assert report["task"] == config.task.name and report["model"] == config.model.name
  assert [r["length"] for r in report["results"]] == list(config.eval.lengths)
  for r, n in zip(report["results"], config.eval.num_examples):
    assert r["num_examples"] == n
    assert 0.0 <= r["symbol_error"] <= r["sequence_error"] <= 1.0
    assert 0.0 <= r["sequence_error"] <= 1.0


def test_train_then_evaluate_writes_everything(tmp_path):
  config = tiny.get_config()
  report = train.train_and_evaluate(config, str(tmp_path))
  check_report_schema(report, config)
  assert report["step"] == config.train.num_steps
  with open(tmp_path / "eval" / f"step_{report['step']}.json") as f:
    assert json.load(f) == report
  assert (tmp_path / "eval" / f"step_{report['step']}.png").exists()
  assert json.loads((tmp_path / "config.json").read_text())["task"]["name"] == "copy"
  lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [l["step"] for l in lines] == list(range(5, config.train.num_steps + 1, 5))
  assert all(np.isfinite(l["loss"]) for l in lines)
  assert any(name.startswith("events") for name in os.listdir(tmp_path / "tensorboard"))
  assert ckpt_lib.Checkpointer(str(tmp_path), create=False).latest_step() == 20


def test_a_max_length_the_task_cannot_take_is_snapped_and_said(tmp_path, capsys):
  config = tiny.get_config()
  config.task.name = "badd"  # odd lengths only: 10 -> 9
  config.train.update(num_steps=1, max_length=10)
  config.curriculum.bins = (5, 9)
  config.eval.update(lengths=(9,), num_examples=(4,))
  report = train.train_and_evaluate(config, str(tmp_path))
  assert report["train_max_length"] == 9
  assert "train.max_length 10 -> 9, the longest length <= it that badd takes" in (
      capsys.readouterr().out)


def test_killed_run_resumes_to_the_same_parameters(tmp_path):
  overrides = ["--config=experiments/tiny.py", "--config.train.num_steps=60",
               "--config.eval.lengths=9", "--config.eval.num_examples=4"]
  straight = str(tmp_path / "straight")
  result = launch(*overrides, f"--workdir={straight}")
  assert result.returncode == 0, result.stderr[-2000:]

  killed = str(tmp_path / "killed")
  proc = subprocess.Popen([sys.executable, "launch.py", *overrides, f"--workdir={killed}"],
                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  ckpt_dir = os.path.join(killed, "checkpoints")
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    if os.path.isdir(ckpt_dir) and any(d.isdigit() and int(d) >= 20 for d in os.listdir(ckpt_dir)):
      break
    time.sleep(0.01)
  assert proc.poll() is None, "the run ended before it could be killed"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  steps = ckpt_lib.Checkpointer(killed, create=False).all_steps()
  assert steps and max(steps) < 60

  result = launch(*overrides, f"--workdir={killed}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "resuming from step" in result.stdout
  step_a, params_a, host_a = final_params(straight)
  step_b, params_b, host_b = final_params(killed)
  assert step_a == step_b == 60
  jax.tree.map(np.testing.assert_array_equal, params_a, params_b)
  assert host_a == host_b
  metrics = lambda d: [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))]
  strip = lambda rows: [{k: v for k, v in r.items() if k != "steps_per_second"} for r in rows]
  assert strip(metrics(straight)) == strip(metrics(killed))


def test_same_config_same_loss_curve(tmp_path):
  config = tiny.get_config("model=dngpu")
  config.train.num_steps = 10
  curves = []
  for name in ("a", "b"):
    train.Trainer(config, str(tmp_path / name)).run()
    rows = [json.loads(l) for l in open(tmp_path / name / "metrics.jsonl")]
    curves.append([(r["loss"], r["seq_err"]) for r in rows])
  assert curves[0] == curves[1]


def test_one_compile_per_bucket_across_the_curriculum(tmp_path):
  config = tiny.get_config()
  config.train.num_steps = 40
  config.train.max_length = 13
  config.curriculum.update(threshold=1.01, every_steps=2, start_length=3)  # always advance
  config.checkpoint.every_steps = 1000
  trainer = train.Trainer(config, str(tmp_path), max_traces=2)  # buckets 8 and 12... and 13
  assert trainer.buckets == (8, 12, 13)
  with pytest.raises(AssertionError, match="max_traces"):
    trainer.run()  # three buckets need three compiles: the guard must notice
  chex.clear_trace_counter()
  trainer = train.Trainer(config, str(tmp_path / "ok"), max_traces=3)
  trainer.run()
  assert trainer.train_step._cache_size() == 3


def test_train_matmul_precision_reaches_every_dot_of_the_step(tmp_path):
  """train.matmul_precision is traced into the step, its gradient's dots included."""
  from tests.test_evaluate import dot_precisions
  config = tiny.get_config()
  texts = {}
  for precision in ("highest", "default"):
    config.train.matmul_precision = precision
    trainer = train.Trainer(config, str(tmp_path))
    host = trainer.init_host()
    texts[precision] = trainer.train_step.lower(trainer.init_state(), trainer.batches(0, host),
                                                trainer.hyper(host)).as_text()
  assert len(dot_precisions(texts["highest"])) >= 6  # forward and gradient dots
  assert set(dot_precisions(texts["highest"])) == {"HIGHEST"}
  assert set(dot_precisions(texts["default"])) == {"DEFAULT"}


def test_non_finite_parameters_stop_the_run_and_are_never_checkpointed(tmp_path):
  """The learning rate jumps to 1e30 at the update of step 5: the state after it is not
  finite. Checkpoints 1-4 are written and finite; step 5 is neither saved nor called good."""
  config = tiny.get_config()
  config.optimizer.update(clip_norm=0.0, schedule="exponential", decay_start=3, decay_steps=1,
                          decay_rate=1e30)
  config.checkpoint.update(every_steps=1, max_to_keep=10)
  config.train.log_every = 100
  with pytest.raises(train.TrainingError) as error:
    train.Trainer(config, str(tmp_path)).run()
  message = str(error.value)
  assert message.startswith("non-finite param_norm at step 5; stopping (last good checkpoint: "
                            "step 4 in ") and "\n" not in message
  checkpoints = ckpt_lib.Checkpointer(str(tmp_path), create=False)
  assert checkpoints.all_steps() == [1, 2, 3, 4]
  state, _ = checkpoints.restore(4, train.Trainer(config, str(tmp_path)).init_state())
  assert ckpt_lib.is_finite(state) and int(state.step) == 4


def test_non_finite_loss_before_any_checkpoint_says_none_was_written(tmp_path):
  config = tiny.get_config()
  config.optimizer.learning_rate = 1e30
  config.optimizer.clip_norm = 0.0
  with pytest.raises(train.TrainingError,
                     match=r"non-finite \w+ at step 1; stopping \(no checkpoint was written\)"):
    train.Trainer(config, str(tmp_path)).run()
  assert not ckpt_lib.has_checkpoint(str(tmp_path))


def test_each_metrics_row_is_the_mean_of_exactly_its_own_steps(tmp_path):
  """Checkpoints every 3 steps and schedule decisions pull metrics between rows; the row at
  step 10 (log every 5) is still the mean of steps 6..10, as logged one by one elsewhere."""
  rows = {}
  for name, log_every, ckpt_every in (("each", 1, 100), ("five", 5, 3)):
    config = tiny.get_config()
    config.train.update(num_steps=10, log_every=log_every)
    config.checkpoint.every_steps = ckpt_every
    train.Trainer(config, str(tmp_path / name)).run()
    rows[name] = [json.loads(l) for l in open(tmp_path / name / "metrics.jsonl")]
  each, five = rows["each"], rows["five"]
  assert [r["step"] for r in five] == [5, 10]
  for row, interval in zip(five, (each[0:5], each[5:10])):
    for key in ("loss", "seq_err", "sym_err", "grad_norm", "param_norm"):
      assert row[key] == pytest.approx(np.mean([r[key] for r in interval]), rel=1e-12), key


def test_relaxation_pull_grows_then_copies_are_tied_for_good(tmp_path):
  config = tiny.get_config()
  config.model.relax_copies = 3
  config.train.num_steps = 16
  config.curriculum.update(threshold=1.01, every_steps=2, start_length=4)  # always advance
  workdir.save_config(config, str(tmp_path))
  train.Trainer(config, str(tmp_path)).run()
  _, params, host = final_params(str(tmp_path))
  assert host["tied"] == 1.0
  assert host["pull"] == pytest.approx(5e-4 * 1.2 ** 5)  # 4 -> 5 -> ... -> 9: five advances
  for name in ("gate_kernel", "gate_bias", "cand_kernel", "cand_bias"):
    copies = np.asarray(params[name])
    assert copies.shape[0] == 3
    np.testing.assert_array_equal(copies[0], copies[1])
    np.testing.assert_array_equal(copies[0], copies[2])
  report = evaluate.evaluate_checkpoint(str(tmp_path), lengths=[9], num_examples=4,
                                       progress=False)
  assert report["results"][0]["num_examples"] == 4


def test_saturation_weight_follows_lr_times_loss(tmp_path):
  trainer = train.Trainer(tiny.get_config("model=dngpu"), str(tmp_path))
  host = trainer.init_host()
  host = host.replace(schedule=host.schedule._replace(window=train.Window(2.0, 4000.0, 2)))
  new = trainer.update_schedule(host)
  lr = trainer.config.optimizer.learning_rate
  assert new.saturation.weight == pytest.approx(lr * 1.0 / 2000.0)  # lr * loss / saturation
  assert new.saturation.weight != host.saturation.weight
  assert new.schedule.window.count == 0 and host.schedule.window.count == 2  # a copy
  # The checkpoint form is the flat dict every run so far has saved, and reads back the same.
  saved = new.to_json()
  assert set(saved) == {"curriculum", "lr_scale", "pull", "tied", "saturation_weight",
                        "loss_history", "window", "log_window", "best"}
  assert saved["saturation_weight"] == new.saturation.weight
  assert train.HostState.from_json(json.loads(json.dumps(saved)), host) == new
  older = {k: v for k, v in saved.items() if k != "log_window"}  # a checkpoint without it
  assert train.HostState.from_json(older, host).log_window == host.log_window


def test_dropout_free_loss_is_the_loss_without_dropout_added_to_the_objective(tmp_path):
  """train.dropout_free_loss_weight: a second pass with every dropout off joins the objective."""
  def one_step(dropout, weight):
    config = tiny.get_config("model=dngpu")
    config.model.update(dropout=dropout, input_dropout=dropout)
    config.train.dropout_free_loss_weight = weight
    trainer = train.Trainer(config, str(tmp_path / f"{dropout}_{weight}"))
    host = trainer.init_host()
    _, metrics = trainer.train_step(trainer.init_state(), trainer.batches(0, host),
                                    trainer.hyper(host))
    return jax.device_get(metrics)

  plain, doubled = one_step(0.0, 0.0), one_step(0.0, 1.0)
  assert "dropout_free_loss" not in plain
  # Without dropout both passes are the same: the same loss, and twice the gradient.
  assert doubled["dropout_free_loss"] == pytest.approx(doubled["loss"], rel=1e-6)
  assert doubled["grad_norm"] == pytest.approx(2 * plain["grad_norm"], rel=1e-3)
  # With dropout the second pass is still the dropout-free one.
  noisy = one_step(0.5, 1.0)
  assert noisy["dropout_free_loss"] == pytest.approx(plain["loss"], rel=1e-6)
  assert abs(noisy["loss"] - plain["loss"]) > 1e-3
  for bad in (-1.0, float("nan"), float("inf")):
    with pytest.raises(train.TrainingError, match="dropout_free_loss_weight"):
      one_step(0.0, bad)
  config = tiny.get_config("model=dngpu")
  config.model.zoneout = 0.1  # its training pass samples zoneout: not the evaluation pass
  config.train.dropout_free_loss_weight = 1.0
  with pytest.raises(train.TrainingError, match="does not combine with model.zoneout"):
    train.Trainer(config, str(tmp_path / "zoneout"))


def test_label_smoothing_changes_the_loss():
  logits = np.array([[[4.0, 0.0, 0.0]]], np.float32)
  targets, lengths = np.array([[0]]), np.array([1])
  plain, _, _ = train.masked_loss(logits, targets, lengths)
  smooth, _, _ = train.masked_loss(logits, targets, lengths, label_smoothing=0.3)
  assert float(smooth) > float(plain)


def test_loss_on_padding_counts_every_position_of_the_bin():
  """The reference's per-bin loss: the mean over the whole padded width, PAD targets included."""
  logits = np.log(np.array([[[0.5, 0.5], [0.25, 0.75], [0.8, 0.2]]], np.float32))
  targets, lengths = np.array([[1, 1, 0]]), np.array([2])
  real, _, real_sym = train.masked_loss(logits, targets, lengths)
  assert float(real) == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2, rel=1e-5)
  every, seq, sym = train.masked_loss(logits, targets, lengths, on_padding=True)
  assert float(every) == pytest.approx(-(np.log(0.5) + np.log(0.75) + np.log(0.8)) / 3, rel=1e-5)
  assert float(sym) == pytest.approx(1 / 3) and float(real_sym) == pytest.approx(1 / 2)


def test_early_stopping_keeps_the_best_checkpoint_and_stops(tmp_path):
  config = tiny.get_config()
  config.train.update(num_steps=200, early_stopping_patience=2, validation_examples=16)
  config.optimizer.learning_rate = 0.0  # nothing improves, so it must stop after 2 more checks
  report = train.train_and_evaluate(config, str(tmp_path))
  checkpoints = ckpt_lib.Checkpointer(str(tmp_path), create=False)
  assert checkpoints.latest_step() == 30  # checks at 10 (best), 20, 30: two without improvement
  best = ckpt_lib.Checkpointer(str(tmp_path), create=False, subdir="best")
  assert best.all_steps() == [10] and report["step"] == 10
  _, _, host = final_params(str(tmp_path))
  assert host["best"]["stopped"] and host["best"]["step"] == 10
  assert train.train_and_evaluate(config, str(tmp_path))["step"] == 10  # a re-run stays stopped
  assert checkpoints.latest_step() == 30


def test_input_noise_replaces_about_the_given_fraction_and_never_pad():
  inputs = np.tile(np.array([[1, 2, 1, 2, 0, 0]], np.int32), (2000, 1))
  noisy = np.asarray(train.corrupt_inputs(inputs, jax.random.key(0), 0.3, vocab_size=5))
  assert np.all(noisy[:, 4:] == 0) and np.all(noisy[:, :4] > 0)
  changed = np.mean(noisy[:, :4] != inputs[:, :4])
  assert 0.3 * 3 / 4 - 0.02 < changed < 0.3 * 3 / 4 + 0.02  # 1 in 4 draws picks the same symbol


def longest_run(values, target):
  best = run = 0
  for v in values:
    run = run + 1 if v == target else 0
    best = max(best, run)
  return best


def test_hard_fraction_mixes_long_carry_chains_into_the_batch(tmp_path):
  from experiments import base, task as task_config
  config = base.exact_length_protocol(task_config.get_config("task=badd,model=dngpu"))
  config.train.update(batch_size=16, hard_fraction=0.5, hard_kinds="carry")
  mixed = train.Trainer(config, str(tmp_path))
  config = base.exact_length_protocol(task_config.get_config("task=badd,model=dngpu"))
  config.train.batch_size = 16
  plain = train.Trainer(config, str(tmp_path))
  host = mixed.init_host()
  hard_runs, plain_runs = [], []
  for (inputs, _, lengths), (plain_inputs, _, _) in zip(mixed.batches(0, host),
                                                        plain.batches(0, host)):
    length = int(lengths[0])
    k = (length - 1) // 2
    digit_sums = (inputs[:, :k] - 1) + (inputs[:, k + 1:length] - 1)
    # The longest run of 'propagate' digit pairs (sum 1), along which a carry travels.
    runs = [longest_run(row, 1) for row in digit_sums]
    if length >= 31:
      plain_runs += runs[:8]
      hard_runs += runs[8:]
    assert np.array_equal(inputs[:8], plain_inputs[:8])  # the first half stays the same
    assert not np.array_equal(inputs[8:], plain_inputs[8:])
  # Random operands: about log2(k) ~ 4; carry windows span at least k/2 digits.
  assert np.mean(hard_runs) > 2.5 * np.mean(plain_runs), (hard_runs, plain_runs)


@pytest.mark.parametrize("task, fields, message", [
    ("badd", dict(hard_fraction=0.3, hard_kinds="bogus"), "no hard kind 'bogus'"),
    ("copy", dict(hard_fraction=0.3), "set train.hard_fraction=0"),
    ("badd", dict(hard_fraction=1.5), "must be in [0, 1]"),
])
def test_hard_fraction_errors(tmp_path, task, fields, message):
  from experiments import base
  config = base.get_config(task=task, model="dngpu")
  config.train.update(**fields)
  with pytest.raises(train.TrainingError, match=message.replace("[", r"\[").replace("]", r"\]")):
    train.Trainer(config, str(tmp_path))


@pytest.mark.parametrize("field, value", [
    ("train.num_steps", 0), ("train.num_steps", -5), ("train.batch_size", 0),
    ("train.log_every", 0), ("checkpoint.every_steps", 0), ("checkpoint.keep_every_steps", -1),
])
def test_a_count_below_its_bound_is_refused_before_anything_is_written(tmp_path, field, value):
  from experiments import tiny
  config = tiny.get_config()
  section, name = field.split(".")
  config[section][name] = value
  workdir = tmp_path / "run"
  with pytest.raises(ValueError, match=f"^{field} must be an integer >= "):
    train.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()


def test_shorter_fraction_pads_shorter_examples_into_each_bin(tmp_path):
  from experiments import base, task as task_config
  config = base.exact_length_protocol(task_config.get_config("task=badd,model=dngpu"))
  config.train.update(batch_size=16, shorter_fraction=0.25)
  trainer = train.Trainer(config, str(tmp_path))
  for inputs, targets, lengths in trainer.batches(3, trainer.init_host()):
    length = int(lengths[-1])
    assert np.all(lengths[4:] == length)
    if length == trainer.task.valid_lengths(length)[0]:
      continue  # nothing shorter exists
    for row in range(4):
      short = int(lengths[row])
      assert short < length and trainer.task.is_valid_length(short)
      assert np.all(inputs[row, short:] == 0) and np.all(targets[row, short:] == 0)
      k = (short - 1) // 2
      digits = inputs[row, :short] - 1
      value = lambda d: int("".join(map(str, d[::-1])) or "0", 2)
      total = value(digits[:k]) + value(digits[k + 1:])
      assert value(targets[row, :short] - 1) == total


def test_the_trainer_learns_xor_through_the_public_api(tmp_path):
  from experiments import xor
  report = train.train_and_evaluate(xor.get_config(), str(tmp_path))
  assert report["results"] == [{"length": 2, "num_examples": 256, "sequence_error": 0.0,
                                "symbol_error": 0.0}]


def test_the_trainer_learns_a_tiny_copy_to_zero_error(tmp_path):
  c = tiny.get_config("model=dngpu")  # measured: 0 errors of 64 after 150 steps
  c.model.update(nmaps=16, dropout=0.0, input_dropout=0.0)
  c.train.update(num_steps=150, batch_size=16, max_length=5, log_every=50, pool_size=0,
                 shorter_fraction=0.0)
  c.curriculum.bins = (5,)
  c.checkpoint.every_steps = 150
  c.eval.update(lengths=(5,), num_examples=(64,))
  report = train.train_and_evaluate(c, str(tmp_path))
  assert report["results"][0]["sequence_error"] == 0.0
  first = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
  assert first["seq_err"] > 0.1  # the first 50 steps still made errors: it learned the task
