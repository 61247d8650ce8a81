"""Tests for the model comparison sweep (experiments/compare.py) and the baselines' base configs."""

import json
import os
import sys

import pytest

from experiments import base, compare, tiny, xor
from neural_gpu import models, sweep, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPARE = os.path.join(ROOT, "experiments", "compare.py")
FAKE_LAUNCHER = """import json, os, sys
flags = dict(a[2:].split("=", 1) for a in sys.argv[1:])
os.makedirs(flags["workdir"], exist_ok=True)
json.dump(sys.argv[1:], open(os.path.join(flags["workdir"], "argv.json"), "w"))
"""


def test_the_sweep_has_one_point_per_model_and_task_and_an_arg_fixes_an_axis():
  points = sweep.load_points(COMPARE)
  assert len(points) == len(compare.MODELS) * len(compare.TASKS) == 40
  assert points[0] == {"arg": "model=neural_gpu,task=copy"}
  assert sweep.load_points(COMPARE + ":model=gru") == [
      {"arg": f"model=gru,task={t}"} for t in compare.TASKS]
  assert [p["arg"] for p in sweep.load_points(COMPARE + ":task=bmul")][:2] == [
      "model=neural_gpu,task=bmul", "model=dngpu,task=bmul"]
  with pytest.raises(ValueError, match="valid keys: model, task"):
    sweep.load_points(COMPARE + ":models=gru")


def test_each_point_runs_with_its_own_arg_and_step_count(tmp_path):
  """run_sweep through a fake launch.py that records its command line: every point's config
  path carries its model and task, and its step count is that model's (STEPS), unless the
  command line sets one for all."""
  launcher = tmp_path / "fake_launch.py"
  launcher.write_text(FAKE_LAUNCHER)
  config_path = COMPARE + ":task=copy"
  summary = sweep.run_sweep(config_path, compare.get_config("task=copy"), {}, str(tmp_path / "r"),
                            str(launcher), parallel=2, poll_seconds=0.05)
  rows = {r["name"]: r for r in summary["points"]}
  assert len(rows) == len(compare.MODELS)
  row = rows["001_model=dngpu_task=copy"]
  assert row["num_steps"] == compare.STEPS["dngpu"] == 300
  with open(os.path.join(row["workdir"], "argv.json")) as f:
    argv = json.load(f)
  assert argv[0] == f"--config={COMPARE}:model=dngpu,task=copy"
  assert not any(a.startswith("--config.arg") for a in argv)
  assert rows["005_model=gru_task=copy"]["num_steps"] == 1000
  short = sweep.run_sweep(config_path, compare.get_config("task=copy"),
                          {"train.num_steps": 7}, str(tmp_path / "s"), str(launcher),
                          parallel=2, poll_seconds=0.05)
  assert {r["num_steps"] for r in short["points"]} == {7}


def test_eval_lengths_skip_100x_for_expensive_models():
  assert tuple(compare.get_config("model=neural_gpu,task=copy").eval.lengths) == (21, 201)
  gru = compare.get_config("model=gru,task=bmul")
  assert tuple(gru.eval.lengths) == (21, 201, 2001) and tuple(gru.eval.num_examples) == (128, 32, 4)
  assert gru.task.name == "bmul" and gru.train.num_steps == 1000


@pytest.mark.parametrize("model", models.names())
def test_base_config_builds_a_trainer_for_every_model(model, tmp_path):
  c = base.get_config("copy", model)
  c.train.max_length = 9  # fixed-size models follow it
  for size_field in ("nmaps", "hidden", "width"):
    if size_field in c.model:
      c.model[size_field] = 4
  trainer = train.Trainer(c, str(tmp_path))
  state = trainer.init_state()
  assert state.params
  if model in ("mlp", "highway_mlp"):
    assert c.model.fixed_length == 9 and c.curriculum.name == "fixed"
  compare_config = compare.get_config(f"model={model},task=badd")
  assert compare_config.model.name == model and compare_config.train.max_length == 21
  assert tiny.get_config(f"model={model}").model.name == model


def test_xor_config_is_a_two_unit_tanh_mlp():
  c = xor.get_config()
  assert (c.task.name, c.task.n_bits, c.model.name) == ("xor", 2, "mlp")
  assert (c.model.depth, c.model.width, c.model.activation) == (1, 2, "tanh")
  assert c.model.fixed_length == 2 and tuple(c.eval.lengths) == (2,)
