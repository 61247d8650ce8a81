"""Checkpoints: non-finite states are never written; incomplete step folders are skipped with a
warning; a writing Checkpointer removes them and the temporary folders of a killed save."""

import os
import shutil

import jax.numpy as jnp
import numpy as np
import pytest

from neural_gpu import checkpoint as ckpt_lib


def save_steps(workdir, steps):
  checkpoints = ckpt_lib.Checkpointer(str(workdir), max_to_keep=10)
  for step in steps:
    checkpoints.save(step, {"w": jnp.full((3,), float(step))}, {"step": step})
  checkpoints.close()


def restored_value(checkpoints, step):
  state, host = checkpoints.restore(step, {"w": jnp.zeros((3,))})
  return float(state["w"][0]), host["step"]


def test_is_finite():
  assert ckpt_lib.is_finite({"a": jnp.ones(2), "n": jnp.zeros((), jnp.int32)})
  assert not ckpt_lib.is_finite({"a": jnp.array([1.0, np.nan])})
  assert not ckpt_lib.is_finite([jnp.array([np.inf])])


def test_a_non_finite_state_is_refused_and_nothing_is_written(tmp_path):
  checkpoints = ckpt_lib.Checkpointer(str(tmp_path))
  with pytest.raises(ValueError, match="refusing to checkpoint step 3: .*non-finite"):
    checkpoints.save(3, {"w": jnp.array([1.0, np.nan])}, {})
  assert checkpoints.all_steps() == [] and os.listdir(tmp_path / "checkpoints") == []
  checkpoints.close()


def test_incomplete_latest_step_is_skipped_then_removed_with_temporary_folders(tmp_path, capsys):
  save_steps(tmp_path, [10, 20])
  directory = tmp_path / "checkpoints"
  # A step folder cut short (no commit marker, no commit time) and a killed save's temp folder.
  shutil.copytree(directory / "20", directory / "30")
  os.remove(directory / "30" / ckpt_lib.COMMIT_MARKER)
  os.remove(directory / "30" / "_CHECKPOINT_METADATA")
  shutil.copytree(directory / "20", directory / "40.orbax-checkpoint-tmp-1234")

  reader = ckpt_lib.Checkpointer(str(tmp_path), create=False)  # eval: reads, removes nothing
  assert reader.all_steps() == [10, 20] and reader.latest_step() == 20
  assert restored_value(reader, 20) == (20.0, 20)
  reader.close()
  assert "skipping incomplete checkpoint" in capsys.readouterr().err
  assert ckpt_lib.has_checkpoint(str(tmp_path))
  assert sorted(os.listdir(directory)) == ["10", "20", "30", "40.orbax-checkpoint-tmp-1234"]

  writer = ckpt_lib.Checkpointer(str(tmp_path), max_to_keep=10)  # training: cleans up
  assert "removing it" in capsys.readouterr().err
  assert sorted(os.listdir(directory)) == ["10", "20"] and writer.latest_step() == 20
  writer.save(30, {"w": jnp.full((3,), 30.0)}, {"step": 30})  # the step can be written again
  assert writer.all_steps() == [10, 20, 30] and restored_value(writer, 30) == (30.0, 30)
  writer.close()


def test_a_folder_with_only_incomplete_steps_has_no_checkpoint(tmp_path):
  save_steps(tmp_path, [5])
  os.remove(tmp_path / "checkpoints" / "5" / ckpt_lib.COMMIT_MARKER)
  os.remove(tmp_path / "checkpoints" / "5" / "_CHECKPOINT_METADATA")
  assert not ckpt_lib.has_checkpoint(str(tmp_path))
  assert ckpt_lib.Checkpointer(str(tmp_path), create=False).latest_step() is None


def test_keep_period_keeps_milestones_beyond_max_to_keep(tmp_path):
  checkpoints = ckpt_lib.Checkpointer(str(tmp_path), max_to_keep=2, keep_period=4)
  for step in range(1, 11):
    checkpoints.save(step, {"w": jnp.full((3,), float(step))}, {"step": step})
  assert checkpoints.all_steps() == [4, 8, 9, 10]
  assert restored_value(checkpoints, 4) == (4.0, 4)
  checkpoints.close()
