"""Checkpoints: orbax CheckpointManager under <workdir>/checkpoints/.

Each checkpoint holds the device state (params, optimizer state, step) and the host state (the
curriculum, learning-rate scale and other trainer bookkeeping) as JSON. Orbax writes each step to
a temporary folder (<step>.orbax-checkpoint-tmp-<time>), renames it when complete and then writes
its commit marker (commit_success.txt). A step folder without the marker is incomplete: it is
skipped with a warning (the previous complete step is used), and a writing Checkpointer removes
it and any leftover temporary folder of a killed save, before orbax sees the folder.
"""

import json
import os
import shutil
import sys
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from neural_gpu.workdir import CHECKPOINTS

COMMIT_MARKER = "commit_success.txt"
TMP_SUFFIX = ".orbax-checkpoint-tmp"


def is_finite(tree: Any) -> bool:
  """True when every floating-point leaf of `tree` is finite (no NaN or inf)."""
  leaves = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]
  return all(np.isfinite(x).all() for x in leaves if np.issubdtype(x.dtype, np.inexact))


def _is_complete(step_dir: str) -> bool:
  if os.path.exists(os.path.join(step_dir, COMMIT_MARKER)):
    return True
  try:  # orbax versions that write no marker on a local disk record the commit time instead
    with open(os.path.join(step_dir, "_CHECKPOINT_METADATA")) as f:
      return json.load(f).get("commit_timestamp_nsecs") is not None
  except (OSError, ValueError):
    return False


def incomplete_steps(directory: str) -> list[int]:
  """Step folders of `directory` without a commit marker (a kill or a copy cut them short)."""
  if not os.path.isdir(directory):
    return []
  return sorted(int(n) for n in os.listdir(directory)
                if n.isdigit() and not _is_complete(os.path.join(directory, n)))


def _warn(message: str) -> None:
  print(f"warning: {message}", file=sys.stderr, flush=True)


class Checkpointer:
  """Saves and restores (state, host) per step. With `create` (training) it also removes the
  incomplete step folders and temporary folders a killed run left; without it, it only reads."""

  def __init__(self, workdir: str, max_to_keep: int = 3, create: bool = True,
               subdir: str = CHECKPOINTS, keep_period: int | None = None):
    """max_to_keep: the latest steps kept; keep_period: steps that are a multiple of it are
    kept as well, whatever max_to_keep says (milestones to evaluate later; None: none)."""
    self.directory = os.path.abspath(os.path.join(workdir, subdir))
    # Only the primary process removes anything: on several hosts another process may be
    # finishing a save there.
    if create and jax.process_index() == 0 and os.path.isdir(self.directory):
      incomplete = incomplete_steps(self.directory)
      for step in incomplete:
        _warn(f"skipping incomplete checkpoint {os.path.join(self.directory, str(step))} "
              f"(no {COMMIT_MARKER}); removing it")
      leftovers = [n for n in os.listdir(self.directory) if TMP_SUFFIX in n]
      for name in leftovers + [str(s) for s in incomplete]:
        shutil.rmtree(os.path.join(self.directory, name))
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, keep_period=keep_period or None, create=create,
        enable_async_checkpointing=False)
    self._manager = ocp.CheckpointManager(  # waits for every process (several hosts)
        self.directory, options=options, item_names=("state", "host"))
    # Listed after that wait, so a step the primary process has just committed counts.
    self._incomplete = incomplete_steps(self.directory)
    for step in self._incomplete:
      _warn(f"skipping incomplete checkpoint {os.path.join(self.directory, str(step))} "
            f"(no {COMMIT_MARKER})")

  def all_steps(self) -> list[int]:
    return sorted(s for s in self._manager.all_steps() if s not in self._incomplete)

  def latest_step(self) -> int | None:
    steps = self.all_steps()
    return steps[-1] if steps else None

  def save(self, step: int, state: Any, host: dict) -> None:
    """Writes checkpoint `step`; ValueError (and nothing written) if `state` is not finite."""
    if not is_finite(state):
      raise ValueError(f"refusing to checkpoint step {step}: the state holds non-finite values")
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), host=ocp.args.JsonSave(host)))
    self._manager.wait_until_finished()

  def restore(self, step: int, like: Any) -> tuple[Any, dict]:
    """Restores checkpoint `step` into the structure (and dtypes) of `like`."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), host=ocp.args.JsonRestore()))
    return restored["state"], dict(restored["host"])

  def close(self) -> None:
    self._manager.close()


def has_checkpoint(workdir: str, subdir: str = CHECKPOINTS) -> bool:
  """True when `workdir/subdir` holds at least one complete step folder."""
  directory = os.path.join(workdir, subdir)
  return os.path.isdir(directory) and any(
      name.isdigit() and _is_complete(os.path.join(directory, name))
      for name in os.listdir(directory))
