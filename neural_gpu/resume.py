"""Can a run folder take this config? Checked before anything is written to it.

A folder that holds a run (config.json, checkpoints) may be resumed or extended with another
config only when the saved state still fits it: same seed, task, model, curriculum and
optimizer.name, and an optimizer state of the same form (which of clip_norm, clip_value,
weight_decay, b2_schedule are on). Everything else (train.*, eval.*, checkpoint.*, the
curriculum's thresholds, the learning rate and its schedule, eps, b1, b2...) may change.
Every refusal is a one-line `TrainingError` naming the setting and the way out.
"""

import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from neural_gpu import checkpoint as ckpt_lib
from neural_gpu import optimizers
from neural_gpu import workdir as workdir_lib


class IncompatibleRun(ValueError):
  """The folder holds a run the config cannot continue; the message says which setting."""


def _plain(value):
  return value.to_dict() if isinstance(value, ml_collections.ConfigDict) else value


def _optimizer_state_form(section: dict):
  """The pytree structure of the optimizer state (params of any shape give the same form)."""
  c = ml_collections.ConfigDict(section)
  state = jax.eval_shape(optimizers.make(c).init, {"w": jnp.zeros((2,), jnp.float32)})
  return jax.tree.structure(state)


def check_compatible(config, workdir: str) -> None:
  """Raises IncompatibleRun when `workdir` holds a run (a config.json) that `config` cannot
  resume: another seed, task, model, curriculum or optimizer.name, or an optimizer state of
  another form. Both configs are compared completed to this code's fields
  (workdir.complete_config), so that a config.json written before a field existed, or after
  one was dropped, still matches.
  Reads only; writes nothing."""
  if not os.path.exists(workdir_lib.config_path(workdir)):
    return
  saved = workdir_lib.load_config(workdir).to_dict()
  new = workdir_lib.complete_config(_plain(config))
  way_out = "use a new --workdir"
  for section in ("seed", "task", "model"):
    old_value, new_value = saved.get(section), new[section]
    if old_value != new_value:
      if isinstance(old_value, dict) and isinstance(new_value, dict):
        changed = ", ".join(f"{section}.{k}: {_shown(old_value, k)} -> {_shown(new_value, k)}"
                            for k in sorted(set(old_value) | set(new_value))
                            if old_value.get(k) != new_value.get(k))
      else:
        changed = f"{section}: {old_value!r} -> {new_value!r}"
      raise IncompatibleRun(
          f"{workdir} holds a run whose {section} settings differ from the config's ({changed}); "
          f"{way_out}")
  old_curriculum = saved.get("curriculum", {}).get("name")
  if old_curriculum != new["curriculum"]["name"]:
    raise IncompatibleRun(
        f"{workdir} holds a run with curriculum.name={old_curriculum}, whose saved schedule "
        f"cannot drive curriculum.name={new['curriculum']['name']}; keep "
        f"--config.curriculum.name={old_curriculum} or {way_out}")
  old_opt, new_opt = saved.get("optimizer", {}), new["optimizer"]
  if old_opt.get("name") != new_opt.get("name"):  # adam and adamax states have one form
    raise IncompatibleRun(
        f"{workdir} holds a run trained with optimizer.name={old_opt.get('name')}, not "
        f"{new_opt.get('name')}; keep {old_opt.get('name')} or {way_out}")
  old_form = _form_or_none(old_opt)
  if old_form is None or _form_or_none(new_opt) != old_form:
    changed = [k for k in sorted(set(old_opt) | set(new_opt)) if old_opt.get(k) != new_opt.get(k)]
    culprits = [k for k in changed if _form_or_none({**old_opt, k: new_opt.get(k)}) != old_form]
    shown = ", ".join(f"optimizer.{k}={old_opt.get(k)!r} -> {new_opt.get(k)!r}"
                      for k in culprits or changed) or "optimizer"
    raise IncompatibleRun(
        f"{workdir} holds optimizer state that the new optimizer settings cannot continue "
        f"({shown}); keep the saved values or {way_out}")


def _shown(section: dict, key: str) -> str:
  # A task parameter a config does not set takes the task's default (e.g. layout 'sequential').
  return repr(section[key]) if key in section else "not set (the default)"


def _form_or_none(section: dict):
  try:
    return _optimizer_state_form(section)
  except (ValueError, KeyError, AttributeError, TypeError):
    return None  # settings this code cannot build


def check_restorable(workdir: str, init_state) -> tuple[int, Any, dict] | None:
  """Restores the latest checkpoint of `workdir` (if any) into the form of `init_state()`,
  reading only, and checks that it holds finite values; raises IncompatibleRun otherwise, so
  that a resume that cannot work fails before anything is written. Returns (step, state, host
  JSON dict) for the trainer to continue from (Trainer.run), or None without a checkpoint."""
  if not ckpt_lib.has_checkpoint(workdir):
    return None
  checkpoints = ckpt_lib.Checkpointer(workdir, create=False)
  step = checkpoints.latest_step()
  try:
    if step is None:
      return None
    try:
      state, host = checkpoints.restore(step, init_state())
    except Exception as e:  # orbax raises many types; the first line of its message says why
      reason = " ".join(str(e).split())[:200]
      raise IncompatibleRun(f"cannot resume from step {step} in {checkpoints.directory} with "
                            f"this config ({reason}); use a new --workdir") from e
    if not ckpt_lib.is_finite(state):
      raise IncompatibleRun(f"checkpoint step {step} in {checkpoints.directory} holds non-finite "
                            "values; use a new --workdir")
    return step, state, host
  finally:
    checkpoints.close()
