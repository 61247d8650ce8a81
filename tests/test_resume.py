"""A run folder refuses, before writing anything, a config whose saved state cannot continue."""

import json
import os

import pytest

from experiments import tiny
from neural_gpu import resume, train
from neural_gpu import workdir as workdir_lib


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("run"))
  config = tiny.get_config()
  config.train.num_steps = 10
  config.eval.update(lengths=(9,), num_examples=(4,))
  train.train_and_evaluate(config, workdir)
  return workdir, config


@pytest.mark.parametrize("field,value,needles", [
    ("optimizer.name", "sgd", ["optimizer.name=adam", "use a new --workdir"]),
    # adamax's state has adam's form, but its updates read it otherwise
    ("optimizer.name", "adamax", ["optimizer.name=adam, not adamax; keep adam"]),
    ("optimizer.clip_norm", 0.0, ["optimizer.clip_norm=1.0 -> 0.0"]),
    ("optimizer.weight_decay", 0.01, ["optimizer.weight_decay=0.0 -> 0.01"]),
    ("curriculum.name", "fixed", ["curriculum.name=ngpu", "--config.curriculum.name=ngpu"]),
    ("model.nmaps", 12, ["model settings differ", "-> 12)", "use a new --workdir"]),
])
def test_a_resume_that_cannot_work_is_refused_and_the_folder_is_untouched(run, field, value,
                                                                          needles, tree_digest):
  workdir, saved = run
  before = tree_digest(workdir)
  config = tiny.get_config()
  config.train.num_steps = 30  # an extension, plus the change that cannot be resumed
  section, name = field.split(".")
  config[section][name] = value
  with pytest.raises(resume.IncompatibleRun) as error:
    train.train_and_evaluate(config, workdir)
  message = str(error.value)
  assert "\n" not in message and all(n in message for n in needles), message
  if section in ("optimizer", "model"):  # only the setting that changes is named
    assert "num_steps" not in message and message.count(f"{section}.") == 1
  assert tree_digest(workdir) == before


def test_a_task_parameter_the_new_config_leaves_out_reads_as_the_default(run, tmp_path):
  workdir, saved = run
  with open(os.path.join(workdir, "config.json")) as f:
    old = json.load(f)
  old["task"]["layout"] = "stacked"  # e.g. a stacked-badd run resumed with a plain badd config
  with open(tmp_path / "config.json", "w") as f:
    json.dump(old, f)
  with pytest.raises(resume.IncompatibleRun, match=r"task\.layout: 'stacked' -> not set "
                     r"\(the default\)\); use a new --workdir"):
    resume.check_compatible(tiny.get_config(), str(tmp_path))


def test_settings_that_keep_the_state_form_extend_the_run(run, tmp_path):
  workdir, saved = run
  config = tiny.get_config()
  config.train.num_steps = 10
  config.optimizer.update(learning_rate=3e-3, schedule="exponential", eps=1e-6, b1=0.8)
  config.curriculum.threshold = 0.3
  resume.check_compatible(config, workdir)  # no error: these may change


def test_a_config_json_of_older_code_still_matches(run, tmp_path):
  workdir, saved = run
  with open(os.path.join(workdir, "config.json")) as f:
    old = json.load(f)
  for name in ("height", "cutoff", "conv_impl", "remat"):  # added to base.py later
    del old["model"][name]
  old["model"]["custom_vjp"] = True  # dropped from the models since
  os.makedirs(tmp_path / "old")
  with open(tmp_path / "old" / "config.json", "w") as f:
    json.dump(old, f)
  resume.check_compatible(saved, str(tmp_path / "old"))
  old["model"]["height"] = 5  # a real difference is still refused
  with open(tmp_path / "old" / "config.json", "w") as f:
    json.dump(old, f)
  with pytest.raises(resume.IncompatibleRun, match=r"\(model.height: 5 -> \d+\)"):
    resume.check_compatible(saved, str(tmp_path / "old"))


def test_a_checkpoint_that_does_not_restore_is_refused_before_any_write(run, tree_digest):
  workdir, saved = run
  before = tree_digest(workdir)
  config = tiny.get_config()
  config.model.nmaps = 12  # checkpoints of nmaps=8 do not fit
  trainer = train.Trainer(config, workdir)
  with pytest.raises(resume.IncompatibleRun, match="cannot resume from step 10 in .*; use a new"):
    resume.check_restorable(workdir, trainer.init_state)
  resume.check_restorable(workdir, train.Trainer(saved, workdir).init_state)  # the saved one fits
  assert tree_digest(workdir) == before


def test_a_folder_a_running_training_holds_is_refused(run, tree_digest):
  workdir, saved = run
  config = tiny.get_config()
  config.train.num_steps = 30
  with workdir_lib.exclusive(workdir):  # another training writes here
    before = tree_digest(workdir)
    with pytest.raises(workdir_lib.TrainingError, match=r"in use by a running training \(pid "):
      train.train_and_evaluate(config, workdir)
    assert tree_digest(workdir) == before
  with workdir_lib.exclusive(workdir):  # released when the holder ends
    pass
