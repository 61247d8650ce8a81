"""The run folder's config.json reads back with exactly this code's fields."""

import json

import pytest

from experiments import base, tiny
from neural_gpu import state as state_lib
from neural_gpu import workdir


@pytest.mark.parametrize("model", sorted(base.MODEL_DEFAULTS))
def test_a_current_config_reads_back_unchanged(model, tmp_path):
  config = tiny.get_config(f"model={model}")
  workdir.save_config(config, str(tmp_path))
  assert workdir.load_config(str(tmp_path)).to_dict() == json.loads(config.to_json())


def test_an_old_config_json_loads_with_this_codes_fields(tmp_path):
  """A config.json written by older code: a field added since takes its default (a model
  parameter the model class's, as such a run ran with the option off; any other field
  experiments/base.py's), a field dropped since (model.custom_vjp) is ignored, saved values
  stay, and the model builds from it."""
  config = tiny.get_config("model=dngpu")
  old = json.loads(config.to_json())
  old["model"]["custom_vjp"] = False
  del old["model"]["bin_steps"]  # base.py: True for the DNGPU; the class default: False
  del old["train"]["loss"], old["eval"]["mc_dropout_samples"], old["checkpoint"]["keep_every_steps"]
  old["train"]["num_steps"] = 7
  (tmp_path / "config.json").write_text(json.dumps(old))
  loaded = workdir.load_config(str(tmp_path))
  for section in ("model", "train", "optimizer", "curriculum", "checkpoint", "eval"):
    assert set(loaded[section]) == set(config[section]), section
  assert config.model.bin_steps and not loaded.model.bin_steps
  assert loaded.train.loss == "softmax_cross_entropy"
  assert loaded.eval.mc_dropout_samples == 0 and loaded.checkpoint.keep_every_steps == 0
  assert loaded.train.num_steps == 7 and loaded.model.nmaps == 8
  model = state_lib.build_model(loaded, state_lib.build_task(loaded))
  assert not model.bin_steps
