"""Debugging aids from the lecture notes: a finite-difference gradient check for any model.

  python launch.py --config=experiments/task.py:task=copy,model=gru --mode=gradcheck
"""

import jax
import jax.numpy as jnp
import numpy as np

from neural_gpu import optimizers, train
from neural_gpu import state as state_lib


def gradient_check(config, length: int = 5, batch_size: int = 2, eps: float = 1e-4,
                   num_directions: int = 4, seed: int = 0) -> dict:
  """Compares autodiff directional derivatives of the training loss with central differences.

  Runs in float64 on a tiny batch of the config's task and model. Returns the largest relative
  error over `num_directions` random directions (below ~1e-5 means the gradients are right).
  """
  task = state_lib.build_task(config)
  model = state_lib.build_model(config, task)
  length = task.nearest_valid_length(task.fixed_length or length)
  data = task.sample(seed, batch_size, length)
  lengths = jnp.full((batch_size,), length, jnp.int32)
  state = state_lib.init_state(config, model, optimizers.make(config.optimizer),
                               config.train.max_length)
  with jax.enable_x64(True):
    params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), state.params)
    model_state = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), state.model_state)

    @jax.jit
    def loss(p):
      out = model.apply({"params": p, **model_state}, data.inputs, lengths, train=False)
      value, _, _ = train.masked_loss(out.logits, data.targets, lengths, config.train.loss)
      return value

    grads = jax.grad(loss)(params)
    worst = 0.0
    for i in range(num_directions):
      leaves, treedef = jax.tree.flatten(params)
      keys = jax.random.split(jax.random.key(seed + i), len(leaves))
      direction = jax.tree.unflatten(
          treedef, [jax.random.normal(k, p.shape, p.dtype) for k, p in zip(keys, leaves)])
      shifted = lambda sign: jax.tree.map(lambda p, d: p + sign * eps * d, params, direction)
      numeric = (loss(shifted(1.0)) - loss(shifted(-1.0))) / (2 * eps)
      analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads),
                                                    jax.tree.leaves(direction)))
      error = abs(float(numeric - analytic)) / max(abs(float(numeric)), abs(float(analytic)), 1e-8)
      worst = max(worst, error)
  return {"model": config.model.name, "task": config.task.name, "length": length,
          "max_relative_error": worst, "ok": bool(worst < 1e-5)}
