"""Seed studies: the --seeds spec, and launch.py --seeds end to end (tiny runs, 4 steps a seed)."""

import json
import os
import subprocess
import sys

import pytest

from neural_gpu import seeds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(ROOT, "launch.py")
TINY = os.path.join(ROOT, "experiments", "tiny.py")
SHORT = ["--config.train.num_steps=4", "--config.train.log_every=2", "--config.eval.lengths=(9,)",
         "--config.eval.num_examples=(8,)"]


def launch(*args, timeout=180):
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return subprocess.run([sys.executable, LAUNCH, *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=timeout)


def read(path):
  with open(path) as f:
    return f.read()


def test_parse_seeds():
  assert seeds.parse_seeds("0-9") == list(range(10))
  assert seeds.parse_seeds("0,3,5") == [0, 3, 5]
  assert seeds.parse_seeds("0-2,7") == [0, 1, 2, 7]
  assert seeds.parse_seeds("4") == [4]
  assert seeds.parse_seeds(" 1 - 2 ") == [1, 2]
  for bad, says in (("", "range 0-9"), ("a", "range 0-9"), ("-1", "range 0-9"), ("1,,2", "range"),
                    ("1.5", "range"), ("3-1", "ends below its start"), ("0-2,1", "given twice"),
                    ("0-100000", "more than")):
    with pytest.raises(ValueError, match=says):
      seeds.parse_seeds(bad)


def test_a_folder_refuses_a_study_of_another_config(tmp_path):
  root = str(tmp_path)
  with open(os.path.join(root, seeds.STUDY_NAME), "w") as f:
    json.dump({"command": "python launch.py ...", "config": TINY,
               "command_line_overrides": {"train.num_steps": 4, "eval.lengths": [9]}}, f)
  seeds.check_folder(root, TINY + ":gru", {})  # no seed trained yet: nothing to keep
  os.makedirs(os.path.join(root, "seed_0"))
  with open(os.path.join(root, "seed_0", "config.json"), "w") as f:
    f.write("{}")
  seeds.check_folder(root, TINY, {"train.num_steps": 8, "eval.lengths": (9,)})  # may extend
  # What is evaluated or checkpointed from now on may change; how the seeds train may not.
  seeds.check_folder(root, TINY, {"train.num_steps": 4, "eval.mc_dropout_samples": 0,
                                  "checkpoint.every_steps": 5})
  with pytest.raises(ValueError, match="holds a seed study of"):
    seeds.check_folder(root, TINY, {"train.num_steps": 4, "model.nmaps": 8})
  with open(os.path.join(root, seeds.STUDY_NAME)) as f:
    extended = dict(json.load(f), num_steps=8)
  with open(os.path.join(root, seeds.STUDY_NAME), "w") as f:
    json.dump(extended, f)
  with pytest.raises(ValueError, match="extended to 8 steps; give --config.train.num_steps=8"):
    seeds.check_folder(root, TINY, {"train.num_steps": 4}, num_steps=4)
  with pytest.raises(ValueError, match="holds a seed study of"):
    seeds.check_folder(root, TINY, {"train.num_stepsx": 4})
  with pytest.raises(ValueError, match="new --workdir"):
    seeds.check_folder(root, TINY + ":gru", {"train.num_steps": 4, "eval.lengths": (9,)})


@pytest.mark.parametrize("args, says", [
    (["--seeds=1-0"], "ends below its start"),
    (["--seeds=0,x"], "give seeds as a range 0-9"),
    (["--seeds=0-1", "--config.seed=3"], "drop --config.seed"),
    (["--seeds=0-1", "--sweep"], "give one"),
    (["--seeds=0-1", "--mode=eval"], "--seeds trains"),
    (["--seeds=0-1", "--config.train.batch_size=0"], "train.batch_size must be an integer >= 1"),
])
def test_misuse_is_one_line_before_anything_is_written(tmp_path, args, says):
  workdir = os.path.join(str(tmp_path), "study")
  result = launch(f"--config={TINY}", f"--workdir={workdir}", *args, *SHORT)
  assert result.returncode == 1
  assert result.stderr.strip().count("\n") == 0 and says in result.stderr, result.stderr
  assert not os.path.exists(workdir)


def test_a_study_whose_seeds_all_fail_exits_1_and_takes_the_corrected_command(tmp_path):
  root = os.path.join(str(tmp_path), "study")
  result = launch(f"--config={TINY}", "--seeds=0", f"--workdir={root}", *SHORT,
                  "--config.model.name=bogus")
  assert result.returncode == 1 and "seeds 0 did not finish; seeds.md says why" in result.stderr
  assert "failed: " in read(os.path.join(root, "seeds.md"))
  # no seed wrote a config.json: the folder holds nothing, and the fixed command may use it
  result = launch(f"--config={TINY}", "--seeds=0", f"--workdir={root}", *SHORT)
  assert result.returncode == 0, result.stderr
  assert "| 0 | ok | 4/4 |" in read(os.path.join(root, "seeds.md"))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
  root = os.path.join(str(tmp_path_factory.mktemp("seeds")), "study")
  result = launch(f"--config={TINY}", "--seeds=0-1", "--parallel=2", f"--workdir={root}", *SHORT)
  assert result.returncode == 0, result.stdout + result.stderr
  return root


def test_study_writes_a_row_per_seed(study):
  record = json.loads(read(os.path.join(study, "seeds.json")))
  assert record["seeds"] == [0, 1] and record["num_steps"] == 4 and record["lengths"] == [9]
  assert record["config"] == TINY and record["command_line_overrides"]["train.num_steps"] == 4
  assert record["command"].startswith("python launch.py --config=") and "--seeds=0-1" in (
      record["command"])
  rows = record["rows"]
  assert [r["seed"] for r in rows] == [0, 1]
  for r in rows:
    workdir = os.path.join(study, f"seed_{r['seed']}")
    assert r["workdir"] == workdir and r["status"] == "ok" and r["error"] is None
    assert r["steps"] == 4 and r["eval_step"] == 4
    assert json.loads(read(os.path.join(workdir, "config.json")))["seed"] == r["seed"]
    # the table's numbers are the seed's own files'
    report = json.loads(read(os.path.join(workdir, "eval", "step_4.json")))
    assert r["eval"]["9"]["sequence_error"] == report["results"][0]["sequence_error"]
    assert r["eval"]["9"]["num_examples"] == 8
    metrics = [json.loads(l) for l in read(os.path.join(workdir, "metrics.jsonl")).splitlines()]
    assert [m["step"] for m in metrics] == [2, 4]
    zero = [m["step"] for m in metrics if m["seq_err"] == 0.0]
    assert r["learned_at"] == (zero[0] if zero else None)
    assert r["seconds"] > 0
  table = read(os.path.join(study, "seeds.md"))
  assert "| seed | status | steps | learned at | L=9 (8 ex.) | wall (min) |" in table
  assert table.count("| ok | 4/4 |") == 2
  ok = sum(r["eval"]["9"]["sequence_error"] == 0.0 for r in rows)
  assert f"(2 seeds: 2 ok): L=9: {ok} of 2." in table


def test_rerun_skips_finished_seeds_and_resumes_unfinished_ones(study):
  def snapshot(seed):
    folder = os.path.join(study, f"seed_{seed}")
    return {name: read(os.path.join(folder, name))
            for name in ("log.txt", "metrics.jsonl", "launches.jsonl", "eval/step_4.json")}

  before = {s: snapshot(s) for s in (0, 1)}
  result = launch(f"--config={TINY}", "--seeds=0-1", f"--workdir={study}", *SHORT)
  assert result.returncode == 0, result.stderr
  assert result.stdout.count("skip  seed_") == 2 and "start " not in result.stdout
  assert {s: snapshot(s) for s in (0, 1)} == before  # nothing retrained or re-evaluated

  # seed 1 without its final report: it resumes from its step-4 checkpoint and only evaluates
  os.remove(os.path.join(study, "seed_1", "eval", "step_4.json"))
  result = launch(f"--config={TINY}", "--seeds=0-1", f"--workdir={study}", *SHORT)
  assert result.returncode == 0, result.stderr
  assert "skip  seed_0" in result.stdout and "start seed_1" in result.stdout
  assert snapshot(0) == before[0]
  after = snapshot(1)
  assert after["metrics.jsonl"] == before[1]["metrics.jsonl"]  # no step trained again
  assert "resuming from step 4" in after["log.txt"][len(before[1]["log.txt"]):]
  assert after["launches.jsonl"].count("\n") == 2
  rows = json.loads(read(os.path.join(study, "seeds.json")))["rows"]
  assert [r["status"] for r in rows] == ["ok", "ok"]
