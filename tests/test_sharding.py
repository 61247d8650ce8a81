"""Data parallelism (neural_gpu/sharding.py) on fake CPU devices.

The suite itself keeps one device; the several-device checks run in subprocesses with
XLA_FLAGS=--xla_force_host_platform_device_count=N: this file run as a script (4 devices, one
process) and launch.py as two processes of 2 devices each (jax.distributed on localhost).
"""

import functools
import json
import os
import shutil
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments import tiny
from neural_gpu import checkpoint as ckpt_lib
from neural_gpu import sharding, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-5  # relative: float reassociation in the cross-device reductions


def env_with_devices(count: int) -> dict:
  env = dict(os.environ, PYTHONPATH=ROOT)
  env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                      f" --xla_force_host_platform_device_count={count}").strip()
  return env


def relative_difference(a, b) -> float:
  return max(float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-30))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def metric_rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


@functools.cache
def tiny_state():
  """The structure every checkpoint here has, on this process's devices."""
  return train.Trainer(tiny.get_config(), "unused").init_state()


def restored_params(workdir, step):
  checkpoints = ckpt_lib.Checkpointer(workdir, create=False)
  state, _ = checkpoints.restore(step, tiny_state())
  checkpoints.close()
  return jax.device_get(state.params)


# -- the script run in a 4-device subprocess -------------------------------------------------
def four_device_checks(out: str) -> None:
  """Writes under `out`: runs one (1 device, 20 steps), four (4 devices, 20 steps), four_to_one
  (four's step-10 checkpoint resumed on 1 device), one_to_four (the reverse), and checks.json."""
  from neural_gpu import evaluate
  assert jax.device_count() == 4, jax.devices()
  checks = {}

  def run(name, num_devices, resume_from=None):
    config = tiny.get_config()  # 20 steps, checkpoints at 10 and 20
    config.train.num_devices = num_devices
    workdir = os.path.join(out, name)
    if resume_from:
      shutil.copytree(os.path.join(out, resume_from), workdir)
      shutil.rmtree(os.path.join(workdir, "checkpoints", "20"))  # resume from step 10
    trainer = train.Trainer(config, workdir)
    return trainer, trainer.run()

  one, _ = run("one", 1)
  four, state = run("four", 4)
  run("four_to_one", 1, resume_from="four")
  run("one_to_four", 4, resume_from="one")

  batch = four.dp.shard(four.batches(0, four.init_host()))[0]
  checks["batch_spec"] = str(batch.inputs.sharding.spec)
  checks["batch_shard_rows"] = sorted(s.data.shape[0] for s in batch.inputs.addressable_shards)
  checks["params_replicated"] = all(x.sharding.is_fully_replicated
                                    for x in jax.tree.leaves(state.params))

  # Evaluation split over 4 devices against no split at all: 6 examples, one batch padded to
  # 8 rows; and with batches of 4 (L=9) and 2 (L=17) rows, 10 examples, grouped 3 and 4 batches
  # per call (the last call of L=17 one batch, padded to 4 batches).
  variables = {"params": state.params, **state.model_state}
  evaluate_on = lambda dp, count: evaluate.evaluate_lengths(
      four.model, variables, four.task, [9, 17], count, 0, four.error_fn, progress=False, dp=dp)
  checks["eval_split"], checks["eval_whole"] = evaluate_on(four.dp, 6), evaluate_on(None, 6)
  evaluate.MAX_CELLS_PER_BATCH = 40
  checks["eval_grouped"], checks["eval_one_by_one"] = (evaluate_on(four.dp, 10),
                                                       evaluate_on(None, 10))

  # Dropout: the DNGPU (dropout 0.1 on input and candidate) applied in training mode to a batch
  # split over 4 devices and to the same batch on 1 device; another key for contrast.
  config = tiny.get_config("model=dngpu")
  trainer = train.Trainer(config, os.path.join(out, "dropout"))
  inputs, _, lengths = trainer.pipeline.fresh_batch(0, (0, 1), 9)  # 8 rows of length 9
  apply = jax.jit(lambda v, x, n, key: trainer.model.apply(
      v, x, n, train=True, rngs={"dropout": key}).logits)
  params = {"params": jax.device_get(trainer.init_state().params)}
  logits = {}
  for name, num_devices, seed in (("one", 1, 0), ("four", 4, 0), ("other_key", 1, 1)):
    dp = sharding.DataParallel(num_devices)
    logits[name] = np.asarray(jax.device_get(apply(
        dp.replicate(params), *dp.shard((inputs, lengths)), jax.random.key(seed))))
  np.savez(os.path.join(out, "dropout_logits.npz"), **logits)

  # Monte Carlo dropout evaluation of that DNGPU: 10 examples of L=9 in batches of 4, grouped
  # over 4 devices or run one by one; each example's masks follow its index, not its batch.
  evaluate.MAX_CELLS_PER_BATCH = 40
  mc_on = lambda dp: evaluate.evaluate_lengths(trainer.model, params, trainer.task, [9], 10, 0,
                                               progress=False, dp=dp, mc_samples=3)
  checks["mc_grouped"], checks["mc_one_by_one"] = mc_on(sharding.DataParallel(4)), mc_on(None)
  with open(os.path.join(out, "checks.json"), "w") as f:
    json.dump(checks, f)


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("four_devices"))
  result = subprocess.run([sys.executable, os.path.abspath(__file__), out], cwd=ROOT,
                          env=env_with_devices(4), capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(out, "checks.json")) as f:
    return out, json.load(f)


def test_four_devices_train_as_one_up_to_reassociation(four_devices):
  out, checks = four_devices
  assert checks["batch_spec"] == "P('data',)"
  assert checks["batch_shard_rows"] == [2, 2, 2, 2]  # tiny: batch 8 over 4 devices
  assert checks["params_replicated"]
  one, four = metric_rows(os.path.join(out, "one")), metric_rows(os.path.join(out, "four"))
  assert [r["num_devices"] for r in one] == [1] * 4 and [r["num_devices"] for r in four] == [4] * 4
  assert all(r["num_processes"] == 1 for r in one + four)
  for a, b in zip(four, one):
    for name in ("loss", "seq_err", "sym_err", "grad_norm", "param_norm"):
      assert a[name] == pytest.approx(b[name], rel=TOLERANCE, abs=1e-7), (a["step"], name)
  one_params = restored_params(os.path.join(out, "one"), 20)
  assert relative_difference(restored_params(os.path.join(out, "four"), 20),
                             one_params) <= TOLERANCE


@pytest.mark.parametrize("name", ["four_to_one", "one_to_four"])
def test_a_checkpoint_resumes_on_another_device_count(four_devices, name):
  out, _ = four_devices
  one_params = restored_params(os.path.join(out, "one"), 20)
  assert relative_difference(restored_params(os.path.join(out, name), 20),
                             one_params) <= TOLERANCE
  rows = metric_rows(os.path.join(out, name))
  assert [(r["step"], r["num_devices"]) for r in rows] == [
      (5, 4 if name == "four_to_one" else 1), (10, 4 if name == "four_to_one" else 1),
      (15, 1 if name == "four_to_one" else 4), (20, 1 if name == "four_to_one" else 4)]


def test_evaluation_split_over_devices_counts_the_same_examples(four_devices):
  _, checks = four_devices
  assert checks["eval_split"] == checks["eval_whole"]
  assert [r["num_examples"] for r in checks["eval_split"]] == [6, 6]
  assert checks["eval_grouped"] == checks["eval_one_by_one"]
  assert [r["num_examples"] for r in checks["eval_grouped"]] == [10, 10]
  assert checks["eval_grouped"][1]["symbol_error"] not in (0.0, 1.0)  # a count, not a constant
  assert checks["mc_grouped"] == checks["mc_one_by_one"]  # Monte Carlo dropout too
  assert checks["mc_grouped"][0]["num_examples"] == 10


def test_dropout_masks_do_not_depend_on_the_device_count(four_devices):
  out, _ = four_devices
  logits = np.load(os.path.join(out, "dropout_logits.npz"))
  np.testing.assert_allclose(logits["four"], logits["one"], rtol=TOLERANCE, atol=1e-6)
  assert np.max(np.abs(logits["other_key"] - logits["one"])) > 1e-3  # the masks do matter


# -- several hosts: two processes of 2 devices each ------------------------------------------
# Opt-in: inside the full suite on the 2-core machine, this pair of jax.distributed processes
# hit a shutdown-barrier timeout in about half the runs (one process never reached it; alone,
# and as plain launch.py commands, it passed every time). Until that is understood it does not
# gate CI: NEURAL_GPU_TEST_MULTIPROCESS=1 pytest tests/test_sharding.py runs it.
@pytest.mark.skipif(os.environ.get("NEURAL_GPU_TEST_MULTIPROCESS") != "1",
                    reason="flaky under load; set NEURAL_GPU_TEST_MULTIPROCESS=1 to run it")
def test_two_processes_make_the_global_batch_and_only_process_0_writes(four_devices, tmp_path):
  out, _ = four_devices
  with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  workdir = str(tmp_path / "hosts")
  procs = [subprocess.Popen(
      [sys.executable, "launch.py", "--config=experiments/tiny.py", "--config.train.num_steps=10",
       "--config.eval.lengths=9", "--config.eval.num_examples=6", f"--workdir={workdir}",
       f"--coordinator_address=localhost:{port}", "--num_processes=2", f"--process_id={i}"],
      cwd=ROOT, env=env_with_devices(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(2)]
  outputs = [p.communicate(timeout=600) for p in procs]
  for p, (stdout, stderr) in zip(procs, outputs):
    assert p.returncode == 0, stderr[-3000:]
    assert stdout.splitlines()[0].startswith("devices: 4 of 4 (cpu), process ")
  rows = metric_rows(workdir)  # one writer: two rows, not four
  assert [(r["step"], r["num_devices"], r["num_processes"]) for r in rows] == [(5, 4, 2),
                                                                               (10, 4, 2)]
  for a, b in zip(rows, metric_rows(os.path.join(out, "one"))):
    for name in ("loss", "sym_err", "grad_norm"):
      assert a[name] == pytest.approx(b[name], rel=TOLERANCE, abs=1e-7), (a["step"], name)
  # The checkpoint both processes saved restores on this process's single device.
  assert relative_difference(restored_params(workdir, 10),
                             restored_params(os.path.join(out, "one"), 10)) <= TOLERANCE


# -- launch.py and the one device of the suite -----------------------------------------------
def test_a_batch_that_does_not_divide_over_the_devices_is_refused(tmp_path):
  workdir = tmp_path / "run"
  for override, needles in (("--config.train.batch_size=6", ("batch_size=6", "4 devices")),
                            ("--config.train.num_devices=5", ("num_devices=5", "4 device"))):
    result = subprocess.run(
        [sys.executable, "launch.py", "--config=experiments/tiny.py", override,
         f"--workdir={workdir}"], cwd=ROOT, env=env_with_devices(4), capture_output=True,
        text=True, timeout=300)
    errors = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert result.returncode == 1 and len(errors) == 1, result.stderr[-2000:]
    assert all(n in errors[0] for n in needles), errors[0]
    assert not workdir.exists()


def test_distributed_flags_are_checked_before_anything_starts(tmp_path):
  result = subprocess.run(
      [sys.executable, "launch.py", "--config=experiments/tiny.py", f"--workdir={tmp_path}/x",
       "--coordinator_address=localhost:1", "--num_processes=2"], cwd=ROOT,
      capture_output=True, text=True, timeout=120)
  assert result.returncode == 1 and "missing --process_id" in result.stderr
  assert not (tmp_path / "x").exists()


def test_one_device_is_a_mesh_of_one():
  dp = sharding.DataParallel()
  assert dp.num_devices == jax.device_count() == 1 and dp.is_primary
  batch = dp.shard(np.arange(6).reshape(3, 2))
  assert batch.sharding.spec == jax.sharding.PartitionSpec("data")
  np.testing.assert_array_equal(batch, np.arange(6).reshape(3, 2))
  assert dp.padded_size(3) == 3
  with pytest.raises(ValueError, match="num_devices=2, but 1 device"):
    sharding.DataParallel(2)


if __name__ == "__main__":
  sys.path.insert(0, ROOT)
  four_device_checks(sys.argv[1])
