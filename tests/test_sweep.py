"""Sweeps: the grid/random_search helpers, point names and commands, and launch.py --sweep end to end.

The end-to-end tests run tiny sweeps (4 training steps a point) through launch.py in subprocesses.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from neural_gpu import sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(ROOT, "launch.py")
# Every point: 4 steps, one small eval length. Tuples exercise the pass-through of tuple flags.
SHORT = ["--config.train.num_steps=4", "--config.eval.lengths=(9,)",
         "--config.eval.num_examples=(8,)"]

SWEEP_FILE = '''"""A test sweep over experiments/tiny.py."""
from experiments import tiny
from neural_gpu.sweep import grid

def get_config(arg=None):
  return tiny.get_config(arg)

def sweep():
  return {points}
'''


def write_sweep_file(folder, points_expr: str) -> str:
  path = os.path.join(folder, "sweep_under_test.py")
  with open(path, "w") as f:
    f.write(SWEEP_FILE.format(points=points_expr))
  return path


def launch(*args, timeout=120):
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return subprocess.run([sys.executable, LAUNCH, *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=timeout)


def read_summary(root):
  with open(os.path.join(root, "summary.json")) as f:
    summary = json.load(f)
  with open(os.path.join(root, "summary.md")) as f:
    return summary, f.read()


# -- helpers ------------------------------------------------------------------------------------
def test_grid_is_the_cartesian_product_in_order():
  points = sweep.grid({"model.relax_copies": [1, 6]}, optimizer__grad_noise=[0.0, 1e-3])
  assert points == [
      {"model.relax_copies": 1, "optimizer.grad_noise": 0.0},
      {"model.relax_copies": 1, "optimizer.grad_noise": 1e-3},
      {"model.relax_copies": 6, "optimizer.grad_noise": 0.0},
      {"model.relax_copies": 6, "optimizer.grad_noise": 1e-3},
  ]
  assert sweep.grid() == [{}]
  assert len(sweep.grid(a=[1, 2, 3], b=["x"], c=[True, False])) == 6
  with pytest.raises(ValueError, match="list of values"):
    sweep.grid(a=3)
  with pytest.raises(ValueError, match="dotted config key"):
    sweep.grid({"model..nmaps": [1]})


def test_random_search_is_deterministic_and_in_range():
  axes = dict(optimizer__learning_rate=(1e-4, 1e-2, "log"), model__dropout=(0.0, 0.3),
              model__nmaps=[8, 16, 24], train__batch_size=(8, 32, "int"))
  a = sweep.random_search(20, 7, **axes)
  assert a == sweep.random_search(20, 7, **axes)
  assert a != sweep.random_search(20, 8, **axes)
  assert len(a) == 20
  for p in a:
    assert set(p) == {"optimizer.learning_rate", "model.dropout", "model.nmaps", "train.batch_size"}
    assert 1e-4 <= p["optimizer.learning_rate"] <= 1e-2
    assert 0.0 <= p["model.dropout"] <= 0.3
    assert p["model.nmaps"] in (8, 16, 24)
    assert isinstance(p["train.batch_size"], int) and 8 <= p["train.batch_size"] <= 32
  # log-uniform: about half the draws below the geometric middle 1e-3
  below = sum(p["optimizer.learning_rate"] < 1e-3 for p in sweep.random_search(400, 0, **axes))
  assert 140 < below < 260
  with pytest.raises(ValueError, match="log range"):
    sweep.random_search(1, 0, x=(0.0, 1.0, "log"))
  with pytest.raises(ValueError, match="scale"):
    sweep.random_search(1, 0, x=(0.0, 1.0, "cubic"))


def test_short_names_are_sanitized_folder_names():
  assert (sweep.short_name(3, {"model.relax_copies": 6, "optimizer.grad_noise": 0.0})
          == "003_relax_copies=6_grad_noise=0")
  assert sweep.short_name(12, {"task.name": "bmul", "curriculum.name": "all_bins"}) == (
      "012_task=bmul_curriculum=all_bins")
  assert sweep.short_name(0, {}) == "000_base"
  assert sweep.short_name(1, {"optimizer.learning_rate": 0.00031622776}) == "001_learning_rate=0.000316"
  assert sweep.short_name(2, {"eval.lengths": (41, 401)}) == "002_lengths=41-401"
  # two keys with the same last part keep their whole keys
  assert sweep.short_name(4, {"a.dropout": 0.1, "b.dropout": 0.2}) == "004_a.dropout=0.1_b.dropout=0.2"
  name = sweep.short_name(5, {"task.name": "a/b c*?:\\..", "seed": True})
  assert name == "005_task=a-b-c-._seed=true"
  assert "/" not in name and " " not in name
  assert len(sweep.short_name(6, {f"k{i}": "v" * 20 for i in range(20)})) <= sweep.MAX_NAME_CHARS
  assert sweep.sanitize("../..") == "point"


def test_command_line_overrides_win_and_values_round_trip():
  point = {"train.num_steps": 1000, "seed": 1, "eval.lengths": (9, 17), "train.flag": True}
  merged = sweep.effective_overrides(point, {"train.num_steps": 4})
  assert merged == {"seed": 1, "eval.lengths": (9, 17), "train.flag": True, "train.num_steps": 4}
  cmd = sweep.point_command("launch.py", "exp.py:arg", "w/000", merged, python="py")
  assert cmd == ["py", "launch.py", "--config=exp.py:arg", "--workdir=w/000", "--config.seed=1",
                 "--config.eval.lengths=(9, 17)", "--config.train.flag=true",
                 "--config.train.num_steps=4"]
  assert sweep.format_value(1e-3) == "0.001" and sweep.format_value("ngpu") == "ngpu"


def test_error_line_prefers_launch_error():
  log = "train [###...] 3/4\rtrain [####] 4/4\nerror: non-finite loss at step 3; stopping\n"
  assert sweep.error_line(log, 1) == "non-finite loss at step 3; stopping"
  assert sweep.error_line("Traceback...\nKeyError: 'x'\n", 1) == "exit status 1: KeyError: 'x'"
  assert sweep.error_line("", -9) == "killed by signal 9"


def test_a_point_may_carry_the_config_files_arg():
  assert sweep.merge_arg("model=gru,task=copy", "task=badd") == "model=gru,task=badd"
  assert sweep.merge_arg("model=gru", "") == "model=gru"
  point = {"arg": "model=gru,task=copy", "seed": 1}
  cmd = sweep.point_command("launch.py", "exp.py:task=badd", "w/000", point, python="py")
  assert cmd == ["py", "launch.py", "--config=exp.py:model=gru,task=badd", "--workdir=w/000",
                 "--config.seed=1"]
  assert sweep.point_command("l.py", "exp.py", "w", {"seed": 2}, python="py")[2] == "--config=exp.py"
  assert sweep.short_name(3, point) == "003_model=gru_task=copy_seed=1"


def test_shipped_sweep_files():
  grid_points = sweep.load_points(os.path.join(ROOT, "experiments", "sweep_ngpu_grid.py"))
  assert len(grid_points) == 32
  assert {p["task.name"] for p in grid_points} == {"badd", "bmul"}
  assert {p["model.relax_copies"] for p in grid_points} == {1, 6}
  assert len(sweep.load_points(os.path.join(ROOT, "experiments", "sweep_ngpu_grid.py:task=bmul"))) == 16
  curricula = sweep.load_points(os.path.join(ROOT, "experiments", "sweep_curricula.py"))
  assert {p["curriculum.name"] for p in curricula} == {"ngpu", "all_bins", "fixed"}
  # every override names a field of the file's config (the config is locked when launched)
  from experiments import sweep_curricula, sweep_ngpu_grid
  for module, points in ((sweep_ngpu_grid, grid_points), (sweep_curricula, curricula)):
    config = module.get_config()
    for key in points[0]:
      section, *rest = key.split(".")
      assert (config[section][rest[0]] if rest else config[section]) is not None, key


# -- launch.py --sweep end to end ---------------------------------------------------------------
@pytest.fixture(scope="module")
def two_point_sweep(tmp_path_factory):
  folder = tmp_path_factory.mktemp("sweep")
  config = write_sweep_file(str(folder), 'grid(seed=[0, 1])')
  root = os.path.join(str(folder), "root")
  t0 = time.time()
  # one at a time: on a 2-core machine two JAX processes at once are slower than in turn
  result = launch(f"--config={config}", f"--workdir={root}", "--sweep", *SHORT)
  return config, root, result, time.time() - t0


def test_sweep_runs_every_point_and_writes_summaries(two_point_sweep):
  _, root, result, _ = two_point_sweep
  assert result.returncode == 0, result.stdout + result.stderr
  summary, table = read_summary(root)
  assert summary["counts"]["ok"] == 2 and summary["counts"]["failed"] == 0
  assert [p["name"] for p in summary["points"]] == ["000_seed=0", "001_seed=1"]
  assert summary["command_line_overrides"]["train.num_steps"] == 4
  assert summary["lengths"] == [9]
  for p in summary["points"]:
    assert p["status"] == "ok" and p["error"] is None and not p["skipped"]
    assert p["steps"] == 4 and p["eval_step"] == 4
    assert 0.0 <= p["train"]["seq_err"] <= 1.0 and 0.0 <= p["train"]["sym_err"] <= 1.0
    assert set(p["eval"]) == {"9"} and p["eval"]["9"]["num_examples"] == 8
    assert os.path.exists(os.path.join(p["workdir"], "eval", "step_4.json"))
    with open(os.path.join(p["workdir"], "log.txt")) as f:
      log = f.read()
    assert "--config.train.num_steps=4" in log and f"--config.seed={p['index']}" in log
    with open(os.path.join(p["workdir"], "config.json")) as f:
      assert json.load(f)["seed"] == p["index"]
  assert "| point | seed | status | steps | train seq_err | train sym_err | L=9 |" in table
  assert "| 001_seed=1 | 1 | ok | 4/4 |" in table


def test_rerun_skips_finished_points(two_point_sweep):
  config, root, first, _ = two_point_sweep
  assert first.returncode == 0
  points = [os.path.join(root, n) for n in ("000_seed=0", "001_seed=1")]
  before = {}
  for p in points:
    for name in ("log.txt", "metrics.jsonl"):
      with open(os.path.join(p, name)) as f:
        before[p, name] = f.read()
  t0 = time.time()
  result = launch(f"--config={config}", f"--workdir={root}", "--sweep", *SHORT)
  seconds = time.time() - t0
  assert result.returncode == 0, result.stdout + result.stderr
  assert result.stdout.count("skip  ") == 2 and "start " not in result.stdout
  for (p, name), text in before.items():  # no point was launched again
    with open(os.path.join(p, name)) as f:
      assert f.read() == text
  summary, _ = read_summary(root)
  assert [(p["status"], p["skipped"]) for p in summary["points"]] == [("ok", True)] * 2
  assert seconds < 15  # no JAX, no training: the sweep process only reads files


def test_a_bad_override_fails_its_point_only(tmp_path):
  config = write_sweep_file(str(tmp_path), '[{"seed": 3}, {"model.no_such_field": 3}]')
  root = os.path.join(str(tmp_path), "root")
  result = launch(f"--config={config}", f"--workdir={root}", "--sweep", "--parallel=2", *SHORT)
  assert result.returncode == 0, result.stdout + result.stderr
  summary, table = read_summary(root)
  good, bad = summary["points"]
  assert good["status"] == "ok" and good["steps"] == 4
  assert bad["name"] == "001_no_such_field=3"
  assert bad["status"] == "failed" and "no_such_field" in bad["error"]
  assert "\n" not in bad["error"] and bad["eval"] == {}
  assert summary["counts"] == {"ok": 1, "failed": 1, "interrupted": 0, "pending": 0,
                               "running": 0}
  assert "| failed: " in table and "## Failed points" in table


def test_misuse_is_a_one_line_error(tmp_path):
  result = launch(f"--config={os.path.join(ROOT, 'experiments', 'tiny.py')}",
                  f"--workdir={tmp_path}", "--sweep")
  assert result.returncode == 1
  assert result.stderr.strip().count("\n") == 0
  assert "defines no sweep()" in result.stderr
  result = launch(f"--config={os.path.join(ROOT, 'experiments', 'tiny.py')}",
                  f"--workdir={tmp_path}", "--parallel=2")
  assert result.returncode == 1 and "--parallel needs --sweep" in result.stderr
  assert not os.path.exists(os.path.join(str(tmp_path), "summary.md"))


def test_sigterm_stops_the_running_points_too(tmp_path):
  """`kill` of a sweep or seed study must not leave its trainings running without it."""
  import signal
  import threading
  launcher = tmp_path / "sleeper.py"  # stands in for launch.py: records its pid, then waits
  launcher.write_text("import os, sys, time\n"
                      "d = [a for a in sys.argv if a.startswith('--workdir=')][0][10:]\n"
                      "open(os.path.join(d, 'pid'), 'w').write(str(os.getpid()))\n"
                      "time.sleep(120)\n")
  point = sweep.Point(0, {"seed": 0}, str(tmp_path / "root"), 4, name="seed_0")
  pid_file = os.path.join(point.workdir, "pid")

  def kill_when_started():
    while not os.path.exists(pid_file) or not open(pid_file).read():
      time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)

  threading.Thread(target=kill_when_started, daemon=True).start()
  with pytest.raises(KeyboardInterrupt):
    sweep.run_points([point], "experiments/tiny.py", {}, str(launcher), 1, lambda: None, 0.05)
  child = int(open(pid_file).read())
  with pytest.raises(ProcessLookupError):  # terminated and reaped
    os.kill(child, 0)
  assert point.status == "interrupted" and "re-run the same command" in point.error
  assert signal.getsignal(signal.SIGTERM) is not sweep._interrupt  # handler restored


@pytest.mark.parametrize("config, suffix, expected", [
    ("experiments/default.py", "", "runs/default"),
    ("experiments/reverse.py", "", "runs/reverse"),
    ("experiments/task.py:task=bmul,model=dngpu", "", "runs/task_task=bmul-model=dngpu"),
    ("experiments/badd_cpu.py", "_seeds", "runs/badd_cpu_seeds"),
])
def test_default_workdir_is_named_after_the_config(config, suffix, expected):
  # launch.py without --workdir: a run of one config never lands in another config's folder
  from absl import flags
  from ml_collections import config_flags
  argv = ["launch.py", f"--config={ROOT}/{config}"]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", flag_values=values, lock_config=True, sys_argv=argv)
  values(argv)
  assert sweep.default_workdir(values["config"], suffix) == expected
