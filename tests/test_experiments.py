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
  from experiments import default, reverse
  config = default.get_config()  # binary addition, operands stacked: 20 bits in L = 21 cells
  assert (config.task.name, config.task.layout) == ("badd", "stacked")
  assert config.train.max_length == 21 and tuple(config.eval.lengths) == (21, 201, 2001)
  assert config.eval.num_examples[:2] == (256, 256) and config.eval.hard_kinds
  config = reverse.get_config()
  assert config.train.max_length == 41 and tuple(config.eval.lengths) == (41, 401, 4001)


def test_another_task_on_a_config_with_task_parameters_says_where_to_go():
  from experiments import default
  from neural_gpu import state
  config = default.get_config()
  config.task.name = "reverse"  # the default sets badd's layout, which reverse does not take
  with pytest.raises(ValueError, match=r"reverse: unknown parameter\(s\) layout.*"
                                       r"use --config=experiments/task.py:task=NAME"):
    state.build_task(config)


def test_parse_arg_reads_named_typed_arguments():
  from experiments import base
  a = base.parse_arg("model=gru, steps=5,lr=0.5,fast=true", model="dngpu", task="badd", steps=1,
                     lr=0.1, fast=False)
  assert (a.model, a.task, a.steps, a.lr, a.fast) == ("gru", "badd", 5, 0.5, True)
  assert base.parse_arg(None, model="dngpu").model == "dngpu"
  for bad, message in (("gru", "'gru' is not key=value; valid keys: model, steps"),
                       ("modle=gru", "unknown key 'modle'; valid keys: model, steps"),
                       ("steps=many", "steps='many' is not a int")):
    with pytest.raises(ValueError, match=message) as e:
      base.parse_arg(bad, model="dngpu", steps=1)
    assert "\n" not in str(e.value)
  with pytest.raises(ValueError, match="valid keys: none"):
    importlib.import_module("experiments.default").get_config("model=gru")


def test_task_file_keeps_the_papers_sizes():
  from experiments import task
  bmul = task.get_config("task=bmul,model=dngpu")
  assert bmul.model.nmaps == 96 and bmul.optimizer.learning_rate == 0.01 * 48 / 96
  assert task.get_config("task=bmul,model=neural_gpu").model.relax_copies == 6
  copy = task.get_config("task=copy,model=gru")
  assert (copy.task.name, copy.model.name) == ("copy", "gru")
  assert tuple(task.get_config().eval.lengths) == (41, 401, 4001)
  assert "layout" not in task.get_config().task  # the papers' layout: the task's own default
  stacked = task.get_config("task=badd,layout=stacked")  # a sum of 20-bit operands: L = 21
  assert stacked.task.layout == "stacked" and stacked.train.max_length == 21
  assert tuple(stacked.eval.lengths) == (21, 201, 2001)


# -- every field the code reads or the README names exists in experiments/base.py ---------------
import ast
import dataclasses
import re

from experiments import base

SECTIONS = ("task", "model", "train", "optimizer", "curriculum", "checkpoint", "eval")
CONFIG_METHODS = {"get", "update", "to_dict", "to_json", "items", "keys", "values", "lock",
                  "unlock", "get_ref", "copy_and_resolve_references"}
# Receivers that are a config section although their name does not say which.
ALIASES = {("neural_gpu/optimizers.py", "c"): "optimizer",
           ("neural_gpu/train.py", "opt"): "optimizer",
           ("neural_gpu/train.py", "c"): "train",  # decay_on_plateau(config.train, ...)
           ("neural_gpu/input_pipeline.py", "train"): "train",  # train = config.train
           ("neural_gpu/curriculum.py", "self.config"): "curriculum"}
CONFIGS = {name: base.get_config(model=name) for name in base.MODEL_DEFAULTS}


def section_of(path, receiver: str):
  """The config section an expression names: config.train, cfg.train, self.config.train..."""
  head, _, last = receiver.rpartition(".")
  if last in SECTIONS and head.split(".")[-1] in ("config", "cfg"):
    return last
  return ALIASES.get((path, receiver))


def config_reads():
  """(file, section, field) for each `<section>.get("field", ...)` and `<section>.field` read."""
  reads = set()
  files = ["launch.py"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(
      os.path.join(ROOT, "neural_gpu", "**", "*.py"), recursive=True))
  for path in files:
    tree = ast.parse(open(os.path.join(ROOT, path)).read())
    for node in ast.walk(tree):
      if not isinstance(node, ast.Attribute):
        continue
      section = section_of(path, ast.unparse(node.value))
      if section is None:
        if ast.unparse(node.value) in ("config", "cfg", "self.config") and \
            node.attr not in SECTIONS + tuple(CONFIG_METHODS) and path != "neural_gpu/curriculum.py":
          reads.add((path, None, node.attr))  # a top-level field such as config.seed
        continue
      if node.attr == "get":
        parent = next((p for p in ast.walk(tree) if isinstance(p, ast.Call) and p.func is node))
        if parent.args and isinstance(parent.args[0], ast.Constant):
          reads.add((path, section, parent.args[0].value))
      elif node.attr not in CONFIG_METHODS:
        reads.add((path, section, node.attr))
  return reads


def exists(section, field) -> bool:
  if section is None:
    return any(field in c for c in CONFIGS.values())
  return any(field in c[section] for c in CONFIGS.values())


def test_every_config_field_the_code_reads_is_in_the_base_config():
  reads = config_reads()
  fields = {(s, f) for _, s, f in reads}
  # The walk must see the reads it exists for (so that it cannot silently match nothing).
  assert {("optimizer", "weight_decay"), ("optimizer", "b1"), ("train", "plateau_patience"),
          ("curriculum", "threshold"), ("checkpoint", "max_to_keep"), ("eval", "num_examples"),
          (None, "seed"), ("model", "relax_copies")} <= fields
  assert len(fields) > 50
  missing = sorted(f"{path}: {s}.{f}" for path, s, f in reads
                   if s != "task" and not exists(s, f))
  assert not missing, missing


def test_every_model_parameter_is_in_the_base_config_with_its_default():
  from neural_gpu import models
  for name in models.names():
    model_fields = {f.name: f.default for f in dataclasses.fields(models._REGISTRY[name])
                    if f.name not in ("parent", "name", "vocab_size")}
    section = base.get_config(model=name).model
    assert set(model_fields) <= set(section), (name, set(model_fields) - set(section))
    differs = {k for k, v in model_fields.items() if section[k] != v}
    # The config turns on the DNGPU reference protocol's training options (dropout on input and
    # candidate, bin-width steps); the model class keeps them off, so plain use is deterministic.
    assert differs <= {"fixed_length", "nmaps", "dropout", "input_dropout", "bin_steps"}, (
        name, differs)


def test_every_field_the_readme_names_is_in_the_base_config():
  text = open(os.path.join(ROOT, "README.md")).read()
  named = set(re.findall(r"--config\.((?:[a-z_0-9]+\.)*[a-z_0-9]+)", text))
  named |= {".".join(m) for m in re.findall(rf"`({'|'.join(SECTIONS)})\.([a-z_0-9]+)", text)}
  assert "optimizer.weight_decay" in named and "train.num_steps" in named
  missing = []
  for dotted in sorted(named - {"section.field"}):  # the README's own placeholder
    section, _, field = dotted.partition(".")
    if section == "task" and field != "name":
      continue  # task parameters belong to the task (alphabet_size...), checked by tasks.get
    if field.endswith("_"):  # a family such as `train.pull_*`
      if not any(k.startswith(field) for c in CONFIGS.values() for k in c[section]):
        missing.append(dotted)
    elif not (exists(section, field) if section in SECTIONS else exists(None, section)):
      missing.append(dotted)
  assert not missing, missing


# -- every field of every model, optimizer and curriculum can be set from the command line -------
def _changed(value):
  """A value of the same type that differs from `value`, as the command line writes it."""
  if isinstance(value, bool):
    return str(not value).lower(), (not value)
  if isinstance(value, int):
    return str(value + 1), value + 1
  if isinstance(value, float):
    return repr(value * 2 + 0.5), value * 2 + 0.5
  if value is None:  # a float placeholder such as optimizer.min_learning_rate
    return "0.25", 0.25
  if isinstance(value, tuple):
    return repr(tuple(v + 1 for v in value)), tuple(v + 1 for v in value)
  return "other", "other"


def _overridable_fields():
  from neural_gpu import models
  cases = []
  for name in models.names():
    c = base.get_config(model=name)
    cases += [(name, "model", f) for f in c.model if f != "name"]
  c = base.get_config(model="dngpu")
  cases += [("dngpu", "optimizer", f) for f in c.optimizer]
  cases += [("neural_gpu", "curriculum", f) for f in c.curriculum]
  return cases


@pytest.mark.parametrize("model, section, field", _overridable_fields())
def test_every_field_can_be_overridden_on_the_command_line(model, section, field):
  from absl import flags
  from ml_collections import config_flags
  default = base.get_config(model=model)[section][field]
  text, expected = _changed(default)
  argv = ["launch.py", f"--config={ROOT}/experiments/task.py:task=copy,model={model}",
          f"--config.{section}.{field}={text}"]
  values = flags.FlagValues()  # as launch.py parses, without touching absl's global flags
  config_flags.DEFINE_config_file("config", flag_values=values, lock_config=True, sys_argv=argv)
  values(argv)
  assert values.config[section][field] == expected
  assert values.config.model.name == model
