"""Every shipped config file builds a trainer, so no experiment rots unnoticed."""

import glob
import importlib
import os

import pytest

from neural_gpu import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILES = sorted(os.path.basename(p)[:-3]
                      for p in glob.glob(os.path.join(ROOT, "experiments", "*.py"))
                      if not os.path.basename(p).startswith(("_", "base")))


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_config_file_builds_a_trainer(name, tmp_path):
  config = importlib.import_module(f"experiments.{name}").get_config()
  train.Trainer(config, str(tmp_path))  # validates task, model, curriculum and optimizer
  assert not os.listdir(tmp_path)  # building writes nothing


def test_default_experiment_tests_1x_10x_and_100x():
  from experiments import default
  config = default.get_config()
  assert config.train.max_length == 41 and tuple(config.eval.lengths) == (41, 401, 4001)
  assert config.eval.num_examples[:2] == (256, 256)
