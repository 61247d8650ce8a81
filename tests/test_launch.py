"""launch.py from the command line: eval mode, and bad input gets one line and exit 1."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config=experiments/tiny.py", "--config.train.num_steps=10"]


def launch(*args):
  return subprocess.run([sys.executable, "launch.py", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("run"))
  result = launch(*TINY, f"--workdir={workdir}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "seq_err" in result.stdout and "wrote" in result.stdout
  return workdir


def assert_one_line_error(result, *needles):
  assert result.returncode == 1
  lines = [l for l in result.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1, result.stderr[-2000:]
  for needle in needles:
    assert needle in lines[0]


def test_eval_mode_reads_the_checkpoint(trained):
  result = launch("--mode=eval", f"--workdir={trained}", "--lengths=5,9,21", "--num_examples=6,6,4",
                  "--matmul_precision=default")
  assert result.returncode == 0, result.stderr[-2000:]
  with open(os.path.join(trained, "eval", "step_10.json")) as f:
    report = json.load(f)
  assert report["matmul_precision"] == "default"  # the flag, over the config's "highest"
  # Merged into the report training wrote (lengths 9 and 17): 9 is measured again, 17 is kept.
  assert [(r["length"], r["num_examples"]) for r in report["results"]] == [
      (5, 6), (9, 6), (17, 8), (21, 4)]
  assert "17" in result.stdout
  assert os.path.exists(os.path.join(trained, "eval", "step_10.png"))
  result = launch("--mode=eval", f"--workdir={trained}", "--step=5", "--lengths=9")
  assert_one_line_error(result, "no checkpoint for step 5", "available")
  # The run's own config is what is evaluated: a --config override would be silently ignored.
  result = launch("--mode=eval", f"--workdir={trained}", "--config.eval.matmul_precision=default")
  assert_one_line_error(result, "reads the run's own config.json", "--matmul_precision")


def test_errors_mode_counts_the_wrong_symbols(trained):
  result = launch("--mode=errors", f"--workdir={trained}", "--lengths=9", "--num_examples=6")
  assert result.returncode == 0, result.stderr[-2000:]
  header, row = result.stdout.strip().splitlines()[-2:]
  assert header.startswith("length | examples | wrong") and row.startswith("9 | 6 | ")
  assert_one_line_error(launch("--mode=errors", f"--workdir={trained}", "--num_examples=0"),
                        "num_examples must be >= 1")
  assert_one_line_error(launch("--mode=errors", f"--workdir={trained}", "--kind=nope"),
                        "no hard test set 'nope'")


def test_bad_input_fails_cleanly_and_leaves_the_workdir_alone(trained, tmp_path, tree_digest):
  before = tree_digest(trained)
  assert_one_line_error(launch(*TINY, "--config.task.name=nope", f"--workdir={tmp_path}/a"),
                        "unknown task 'nope'", "copy")
  assert_one_line_error(launch(*TINY, "--config.model.name=nope", f"--workdir={tmp_path}/b"),
                        "unknown model 'nope'", "dngpu")
  assert_one_line_error(launch(*TINY, "--config.model.name=gru", f"--workdir={tmp_path}/b"),
                        "model 'gru' has no parameter(s)", "experiments/task.py:model=gru")
  assert_one_line_error(launch("--mode=eval", f"--workdir={trained}", "--mc_dropout_samples=4"),
                        "needs a model with candidate dropout")
  assert_one_line_error(launch("--mode=eval", f"--workdir={trained}", "--matmul_precision=fp8"),
                        "matmul_precision='fp8' is not a matmul precision", "highest")
  assert_one_line_error(launch(*TINY, "--config.eval.matmul_precision=tf32",
                               f"--workdir={tmp_path}/c"), "eval.matmul_precision='tf32'")
  assert_one_line_error(launch(*TINY, "--config.train.matmul_precision=tf32",
                               f"--workdir={tmp_path}/c"), "train.matmul_precision='tf32'")
  assert_one_line_error(launch(*TINY, "--config.train.num_stepz=3", f"--workdir={tmp_path}/c"),
                        "num_steps")
  assert_one_line_error(launch(*TINY, "--config.eval.num_examples=0", f"--workdir={tmp_path}/d"),
                        "num_examples")
  assert_one_line_error(launch("--mode=eval", f"--workdir={tmp_path}/empty"), "train there first")
  assert_one_line_error(launch("--mode=eval", f"--workdir={trained}", "--lengths=0"),
                        "length")
  assert_one_line_error(launch("--mode=eval", f"--workdir={trained}", "--hard_kinds=carry"),
                        "copy has no hard test set 'carry'")
  assert_one_line_error(launch(*TINY, "--config.model.nmaps=12", f"--workdir={trained}"),
                        "use a new --workdir")
  assert_one_line_error(launch("--config=experiments/tiny.py:dngpu", f"--workdir={tmp_path}/e"),
                        "'dngpu' is not key=value; valid keys: model")
  assert not os.path.exists(f"{tmp_path}/e")
  # An override of a field this config (here: this model) lacks names the override.
  assert_one_line_error(launch(*TINY, "--config.model.zoneout=0.5", f"--workdir={tmp_path}/z"),
                        "--config.model.zoneout: the config has no field model.zoneout")
  assert not os.path.exists(f"{tmp_path}/z")
  assert_one_line_error(launch(*TINY, "--config.task.layout=stacked", f"--workdir={tmp_path}/z"),
                        "no field task.layout", "experiments/task.py:task=badd,layout=stacked")
  assert_one_line_error(launch("--mode=eval", f"--workdir={trained}", "--lengths=4a"),
                        "--lengths=4a: give integers")
  assert_one_line_error(launch("--mode=eval", f"--workdir={trained}", "--lengths=9,17,21",
                               "--num_examples=4,8"), "num_examples has 2 entries for 3 lengths")
  assert_one_line_error(launch("--mode=eval", f"--workdir={trained}", "--num_examples=4x"),
                        "--num_examples=4x: give integers")
  assert_one_line_error(launch("--config=experiments/tiny.py:model=dngpu", f"--workdir={trained}"),
                        "use a new --workdir")
  assert_one_line_error(launch(*TINY, "--config.seed=7", f"--workdir={trained}"),
                        "(seed: 0 -> 7)")
  # A resume that cannot work names the setting and the way out, and rewrites no config.json.
  assert_one_line_error(launch(*TINY, "--config.train.num_steps=30", "--config.optimizer.name=sgd",
                               f"--workdir={trained}"),
                        "optimizer.name=adam, not sgd", "use a new --workdir")
  # A config file that is not there, not Python, or does not load.
  assert_one_line_error(launch("--config=experiments/nosuch.py", f"--workdir={tmp_path}/g"),
                        "--config=experiments/nosuch.py: no such file", "experiments/default.py")
  assert_one_line_error(launch("--config=README.md", f"--workdir={tmp_path}/g"),
                        "not a Python config file")
  (tmp_path / "broken.py").write_text("def get_config(:\n")
  assert_one_line_error(launch(f"--config={tmp_path}/broken.py", f"--workdir={tmp_path}/g"),
                        "the config file does not load (SyntaxError")
  # A flag the mode does not read would be ignored: refused instead.
  assert_one_line_error(launch("--mode=eval", f"--workdir={trained}", "--length=33"),
                        "--length is read by --mode=visualize, not --mode=eval", "--lengths")
  assert_one_line_error(launch(*TINY, "--lengths=9", f"--workdir={tmp_path}/g"),
                        "--lengths is read by --mode=eval or --mode=errors, not --mode=train")
  assert_one_line_error(launch("--mode=errors", f"--workdir={trained}", "--hard_kinds=carry"),
                        "--hard_kinds is read by --mode=eval")
  assert_one_line_error(launch("--mode=eval", f"--workdir={trained}", "--lengths=9,9"),
                        "repeat 9; give each length once")
  # A study folder is not a run, and a run folder is not a study.
  (tmp_path / "study" / "seed_0").mkdir(parents=True)
  (tmp_path / "study" / "seeds.json").write_text("{}")
  for mode in ("train", "eval"):
    assert_one_line_error(launch(*(TINY if mode == "train" else ["--mode=eval"]),
                                 f"--workdir={tmp_path}/study"),
                          "holds a seed study; give one of its runs, e.g. --workdir=",
                          "study/seed_0")
  assert_one_line_error(launch(*TINY, "--seeds=0", f"--workdir={trained}"),
                        "holds a run, not a seed study; give the study a new --workdir")
  assert sorted(os.listdir(tmp_path / "study")) == ["seed_0", "seeds.json"]
  # A chain under a curriculum that would train its first member only.
  assert_one_line_error(launch(*TINY, "--config.task.name=badd,incr", f"--workdir={tmp_path}/e"),
                        "needs curriculum.name=chain")
  # Every field the README lists can be set (the override parses; the bad task name refuses).
  assert_one_line_error(launch(*TINY, "--config.optimizer.weight_decay=0.01",
                               "--config.optimizer.min_learning_rate=0.0001",
                               "--config.task.name=nope", f"--workdir={tmp_path}/f"),
                        "unknown task 'nope'")
  assert tree_digest(trained) == before
  assert not any(os.path.exists(tmp_path / d) for d in ("a", "b", "c", "d", "e", "f", "g",
                                                         "empty"))
