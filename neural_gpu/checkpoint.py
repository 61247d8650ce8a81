"""Checkpoints: orbax CheckpointManager under <workdir>/checkpoints/.

Each checkpoint holds the device state (params, optimizer state, step) and the host state (the
curriculum, learning-rate scale and other trainer bookkeeping) as JSON. Orbax writes each step to
a temporary folder and renames it when complete, so a kill mid-save never leaves a half checkpoint.
"""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpointer:

  def __init__(self, workdir: str, max_to_keep: int = 3, create: bool = True,
               subdir: str = "checkpoints"):
    self.directory = os.path.abspath(os.path.join(workdir, subdir))
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=create, enable_async_checkpointing=False)
    self._manager = ocp.CheckpointManager(
        self.directory, options=options, item_names=("state", "host"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, host: dict) -> None:
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


def has_checkpoint(workdir: str, subdir: str = "checkpoints") -> bool:
  directory = os.path.join(workdir, subdir)
  return os.path.isdir(directory) and any(
      name.isdigit() for name in os.listdir(directory))
