"""What a run is built from its config: the task, the model, and the device state (`TrainState`).

Training (train.py) and evaluation (evaluate.py) both start here, so a checkpoint restores into
the same structure whichever of them reads it.
"""

from typing import Any

import flax
import jax
import jax.numpy as jnp

import tasks
from neural_gpu import models


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  model_state: Any  # mutable collections such as batch_stats; {} for most models


def split_name(section) -> tuple[str, dict]:
  """A config section {'name': n, **params} -> (n, params)."""
  params = dict(section)
  return params.pop("name"), params


def build_task(config):
  """The task of config.task (tasks.get; ValueError lists the valid names and parameters)."""
  name, params = split_name(config.task)
  try:
    return tasks.get(name, **params)
  except tasks.UnknownParameterError as e:
    # e.g. --config.task.name=reverse on a config file that sets badd's layout
    raise ValueError(f"{e} (the config file sets task parameters for its own task; for another "
                     "task use --config=experiments/task.py:task=NAME)") from None


def build_model(config, task):
  """The flax module of config.model for the task's vocabulary (ValueError on a bad name)."""
  name, params = split_name(config.model)
  try:
    return models.get(name, task.vocab_size, **params)
  except ValueError as e:
    if "has no parameter" not in str(e):
      raise
    # Typically --config.model.name=X over another model's section: the config file builds the
    # section for the model its arg names.
    raise ValueError(f"{e}; to change the model, give it to the config file's arg "
                     f"(e.g. experiments/task.py:model={name}), not --config.model.name") from None


def init_state(config, model, optimizer, max_length: int) -> TrainState:
  """The state at step 0: parameters from fold_in(key(config.seed), 2**20), initialized on a
  (1, max_length) int32 sample, and the optimizer's initial state. One jit'd program (cached by
  the persistent compilation cache) instead of dozens of op-by-op compiles: the same values."""
  key = jax.random.fold_in(jax.random.key(config.seed), 1 << 20)
  sample = jnp.zeros((1, max_length), jnp.int32)
  init = jax.jit(lambda k: model.init({"params": k, "dropout": k}, sample,
                                      jnp.array([max_length]), train=False))
  variables = dict(init(key))
  params = variables.pop("params")
  return TrainState(jnp.zeros((), jnp.int32), params, jax.jit(optimizer.init)(params), variables)
