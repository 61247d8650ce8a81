"""The run folder (--workdir): what a run writes where, named in this one place.

  <workdir>/config.json          the resolved config (save_config; read back by load_config)
  <workdir>/checkpoints/<step>/  orbax checkpoints, the last few (neural_gpu/checkpoint.py)
  <workdir>/best/<step>/         the checkpoint early stopping kept (train.early_stopping_patience)
  <workdir>/metrics.jsonl        one JSON line of training metrics per log step (metrics.py)
  <workdir>/tensorboard/         the same metrics as TensorBoard event files
  <workdir>/curves.png           the training curves (visualize.write_curves)
  <workdir>/eval/step_<N>.json   the evaluation report of checkpoint N, and step_<N>.png its plot
  <workdir>/visualize/           --mode=visualize pictures of the state over time
  <workdir>/lock                 held (flock) by the training that writes here (exclusive)

A study folder holds runs, one a subfolder: <root>/seeds.json for a seed study (seeds.py),
<root>/summary.json for a sweep (sweep.py). A folder is one of the three kinds (folder_kind).

Importing this module imports no JAX: the sweep and seed-study processes read run folders too
(load_config does, for the model registry; they do not call it).
"""

import contextlib
import fcntl
import json
import os

CONFIG = "config.json"
CHECKPOINTS = "checkpoints"
BEST = "best"
METRICS = "metrics.jsonl"
TENSORBOARD = "tensorboard"
CURVES = "curves.png"
EVAL = "eval"
VISUALIZE = "visualize"
LOCK = "lock"
SEED_STUDY = "seeds.json"
SWEEP_SUMMARY = "summary.json"
KIND_FILES = {"a run": CONFIG, "a seed study": SEED_STUDY, "a sweep": SWEEP_SUMMARY}


class TrainingError(RuntimeError):
  """Training or evaluation cannot go on (non-finite loss, no checkpoint, incompatible workdir);
  the message (one line) says why and what to do."""


@contextlib.contextmanager
def exclusive(workdir: str, enabled: bool = True):
  """Holds an exclusive lock on <workdir>/lock for the block, so that two trainings never write
  one run folder (a second `launch.py` on a running workdir, or a run left behind by a killed
  sweep). The kernel drops the lock when its process dies, however it dies. Raises TrainingError
  (one line, nothing else written) when another process holds it. enabled=False: no lock (the
  non-primary processes of a multi-host run, whose folder the primary one writes)."""
  if not enabled:
    yield
    return
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, LOCK), "a+") as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      holder = f.read().strip() or "another process"
      raise TrainingError(f"{workdir} is in use by a running training ({holder}); stop it or "
                          "use another --workdir") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}")
    f.flush()
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def folder_kind(path: str) -> str | None:
  """What `path` holds: 'a run', 'a seed study' or 'a sweep' (by the file each writes first),
  or None (nothing yet)."""
  return next((kind for kind, name in KIND_FILES.items()
               if os.path.exists(os.path.join(path, name))), None)


def check_folder_kind(path: str, wanted: str, way: str) -> None:
  """Raises ValueError (one line) when `path` holds another kind than `wanted`; `way` says
  what to do instead."""
  kind = folder_kind(path)
  if kind not in (None, wanted):
    raise ValueError(f"{path} holds {kind}, not {wanted}; {way}")


def config_path(workdir: str) -> str:
  return os.path.join(workdir, CONFIG)


def metrics_path(workdir: str) -> str:
  return os.path.join(workdir, METRICS)


def eval_report_path(workdir: str, step: int, suffix: str = ".json") -> str:
  """<workdir>/eval/step_<step><suffix> (.json: the report; .png: its plot)."""
  return os.path.join(workdir, EVAL, f"step_{int(step)}{suffix}")


def write_json(path: str, obj) -> None:
  """Writes `obj` as indented JSON atomically (a kill leaves the old file or the new one, never
  half of one)."""
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=1)
  os.replace(path + ".tmp", path)


def save_config(config, workdir: str) -> None:
  """Writes config.json atomically (a kill leaves the old one or the new one, never half)."""
  os.makedirs(workdir, exist_ok=True)
  path = config_path(workdir)
  with open(path + ".tmp", "w") as f:
    f.write(config.to_json(indent=1))
  os.replace(path + ".tmp", path)


def load_config(workdir: str):
  """The ml_collections.ConfigDict saved in <workdir>/config.json, completed to this code's
  fields (`complete_config`, so that a folder written by older code still loads); TrainingError
  if none."""
  import ml_collections
  path = config_path(workdir)
  if not os.path.exists(path):
    raise TrainingError(f"no config.json in {workdir}: train there first "
                        "(python launch.py --config=... --workdir=...)")
  with open(path) as f:
    return ml_collections.ConfigDict(complete_config(json.load(f)))


def complete_config(saved: dict) -> dict:
  """A config as a plain dict (e.g. a config.json written before some field existed, or after
  one was dropped) with exactly the fields this code has for its task and model.

  A missing model parameter takes the model class's default: such a run ran with the option off
  (and resume.check_compatible compares model sections completed so). Any other missing field
  takes its default in experiments/base.py for the run's task and model. Fields this code no
  longer has (e.g. model.custom_vjp) are dropped; the task section is kept as saved.
  """
  from experiments import base
  from neural_gpu import models
  name = saved["model"]["name"]
  current = base.get_config(task=saved["task"]["name"], model=name).to_dict()
  done = {k: saved.get(k, v) for k, v in current.items()}
  for section, fields in current.items():
    if section not in ("task", "model") and isinstance(fields, dict):
      done[section] = {k: saved.get(section, {}).get(k, v) for k, v in fields.items()}
  model = {**models.defaults(name), **saved["model"]}
  done["model"] = {k: v for k, v in model.items() if k == "name" or k in models.parameters(name)}
  return done


# Counts and periods that must be >= 1 (a period of 0 would divide by zero mid-run) or >= 0.
POSITIVE_FIELDS = ("train.num_steps", "train.batch_size", "train.log_every",
                   "train.schedule_every", "curriculum.every_steps", "checkpoint.every_steps",
                   "checkpoint.max_to_keep")
NON_NEGATIVE_FIELDS = ("checkpoint.keep_every_steps", "train.early_stopping_patience")


def check_counts(config) -> None:
  """Raises ValueError (one line) for a step count, batch size or period below its bound;
  called before anything is written."""
  for fields, low in ((POSITIVE_FIELDS, 1), (NON_NEGATIVE_FIELDS, 0)):
    for field in fields:
      section, name = field.split(".")
      value = config[section].get(name, low)
      if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{field} must be an integer >= {low}, got {value!r}; set "
                         f"--config.{field}=N with N >= {low}")
