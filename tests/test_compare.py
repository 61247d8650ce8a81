"""Tests for the model comparison (experiments/compare.py) and the baselines' base configs."""

import json
import os

import pytest

from experiments import base, compare, tiny, xor
from neural_gpu import models, train

LENGTHS = (21, 41, 201)


def fake_point(model, task, results, steps=100, status="ok"):
  """A point as compare.main holds it, with results as an eval report lists them."""
  report = {"step": steps, "results": results}
  return dict(model=model, task=task, status=status, error=None, seconds=12.5, steps=steps,
              num_steps=steps, train={"seq_err": 0.25, "sym_err": 0.01, "loss": 0.1, "length": 21},
              results=compare.results_by_length(report))


def fake_summary():
  mlp = [{"length": 21, "num_examples": 128, "sequence_error": 0.0, "symbol_error": 0.0},
         {"length": 41, "not_applicable": "mlp is built for length 21"},
         {"length": 201, "not_applicable": "mlp is built for length 21"}]
  # Listed out of order and without length 41: keyed by length, nothing may shift.
  gru = [{"length": 201, "num_examples": 32, "sequence_error": 1.0, "symbol_error": 0.375},
         {"length": 21, "num_examples": 128, "sequence_error": 0.5, "symbol_error": 0.03125}]
  points = [fake_point("mlp", "copy", mlp), fake_point("gru", "copy", gru),
            fake_point("gru", "badd", [], status="failed")]
  points[-1]["error"] = "non-finite loss at step 7"
  return compare.build_summary(points, LENGTHS, 21, command="python experiments/compare.py")


def test_summary_json_is_keyed_by_model_task_and_length():
  summary = json.loads(json.dumps(fake_summary()))  # what compare.json holds
  copy = summary["results"]["gru"]["copy"]["lengths"]
  assert copy["21"]["sequence_error"] == 0.5
  assert copy["201"] == {"sequence_error": 1.0, "symbol_error": 0.375, "num_examples": 32}
  assert copy["41"] is None  # not run, and not filled from a neighbouring list entry
  mlp = summary["results"]["mlp"]["copy"]["lengths"]
  assert mlp["21"]["sequence_error"] == 0.0
  assert "not_applicable" in mlp["41"] and "not_applicable" in mlp["201"]
  assert summary["results"]["gru"]["badd"]["status"] == "failed"
  assert summary["lengths"] == list(LENGTHS)


def test_markdown_shows_na_not_run_and_failures():
  text = compare.format_markdown(fake_summary())
  rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line
          for line in text.splitlines() if line.startswith("| mlp") or line.startswith("| gru")}
  mlp = rows[("mlp", "copy")].split("|")
  assert mlp[-4].strip() == "0.000 / 0.000 (n=128)"
  assert mlp[-3].strip() == "n/a" and mlp[-2].strip() == "n/a"
  gru = rows[("gru", "copy")].split("|")
  assert gru[-4].strip() == "0.500 / 0.031 (n=128)"
  assert gru[-3].strip() == "not run"
  assert gru[-2].strip() == "1.000 / 0.375 (n=32)"
  assert "failed: non-finite loss at step 7" in rows[("gru", "badd")]
  assert "L=201 (10x)" in text and "Command: `python experiments/compare.py`" in text


def test_finished_points_are_read_back_and_skipped(tmp_path, capsys):
  root = str(tmp_path)
  for model in ("mlp", "gru"):  # fake finished points: eval JSON at the final step, metrics
    workdir = os.path.join(root, compare.point_name(model, "copy"))
    os.makedirs(os.path.join(workdir, "eval"))
    results = [{"length": 21, "num_examples": 8, "sequence_error": 0.125, "symbol_error": 0.5}]
    results.append({"length": 201, "not_applicable": "fixed"} if model == "mlp" else
                   {"length": 201, "num_examples": 2, "sequence_error": 1.0, "symbol_error": 0.25})
    with open(os.path.join(workdir, "eval", "step_5.json"), "w") as f:
      json.dump({"step": 5, "results": results}, f)
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
      f.write(json.dumps({"step": 5, "seq_err": 0.5, "sym_err": 0.1, "loss": 1.0}) + "\n{cut")
  compare.main([f"--workdir={root}", "--models=mlp,gru", "--tasks=copy", "--steps=5",
                "--lengths=21,201", "--examples=8,2"])
  assert capsys.readouterr().out.count("skip") == 2  # nothing was trained
  with open(os.path.join(root, "compare.json")) as f:
    summary = json.load(f)
  assert summary["results"]["gru"]["copy"]["lengths"]["201"]["symbol_error"] == 0.25
  assert summary["results"]["gru"]["copy"]["steps"] == 5
  assert "not_applicable" in summary["results"]["mlp"]["copy"]["lengths"]["201"]
  with open(os.path.join(root, "compare.md")) as f:
    assert "n/a" in f.read()


def test_eval_plan_skips_the_longest_length_for_expensive_models():
  assert compare.eval_plan("neural_gpu", (21, 201, 2001), (8, 4, 2), ("gru",)) == ((21, 201),
                                                                                   (8, 4))
  assert compare.eval_plan("gru", (21, 201, 2001), (8, 4, 2), ("gru",)) == ((21, 201, 2001),
                                                                            (8, 4, 2))
  assert compare.parse_arg("lstm,bmul") == ("lstm", "bmul")
  with pytest.raises(ValueError):
    compare.parse_arg("lstm")


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
  compare_config = compare.get_config(f"{model},badd")
  assert compare_config.model.name == model and compare_config.train.max_length == 21
  assert tiny.get_config(model).model.name == model


def test_xor_config_is_a_two_unit_tanh_mlp():
  c = xor.get_config()
  assert (c.task.name, c.task.n_bits, c.model.name) == ("xor", 2, "mlp")
  assert (c.model.depth, c.model.width, c.model.activation) == (1, 2, "tanh")
  assert c.model.fixed_length == 2 and tuple(c.eval.lengths) == (2,)
