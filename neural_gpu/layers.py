"""Building blocks picked by name from a config: activations, initializers, normalization.

Every lookup raises a ValueError listing the valid names, so a typo in a config fails at once.
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

LEAKY_RELU_SLOPE = 0.01

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, LEAKY_RELU_SLOPE),
    "elu": lambda x: jax.nn.elu(x, 1.0),
    # The exact form x * Phi(x); the tanh approximation differs by up to ~1e-3.
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
}

# Variance-scaling schemes: Var(w) = 1/fan_in (LeCun), 2/(fan_in+fan_out) (Glorot),
# 2/fan_in (He). The normal variants are truncated normals rescaled to that variance.
INITIALIZERS: dict[str, Callable[..., Any]] = {
    "lecun_normal": jax.nn.initializers.lecun_normal(),
    "lecun_uniform": jax.nn.initializers.lecun_uniform(),
    "glorot_normal": jax.nn.initializers.glorot_normal(),
    "glorot_uniform": jax.nn.initializers.glorot_uniform(),
    "he_normal": jax.nn.initializers.he_normal(),
    "he_uniform": jax.nn.initializers.he_uniform(),
}

NORMS = ("none", "batch", "layer")


def _lookup(kind: str, table, name: str):
  if name not in table:
    raise ValueError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(table))}")
  return table[name]


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
  return _lookup("activation", ACTIVATIONS, name)


def initializer(name: str):
  """A flax/jax initializer `init(key, shape, dtype)` for 2-D (fan_in, fan_out) kernels."""
  return _lookup("initializer", INITIALIZERS, name)


def check_norm(name: str) -> str:
  return _lookup("norm", {n: n for n in NORMS}, name)


class Norm(nn.Module):
  """'none', 'layer' or 'batch' normalization over the last axis.

  'batch' keeps running statistics in the 'batch_stats' collection: with train=True it
  normalizes with the batch's own statistics and updates the running ones (the caller must pass
  mutable=['batch_stats'], see `apply_train`); with train=False it uses the running ones.
  """
  kind: str = "none"
  momentum: float = 0.9

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    kind = check_norm(self.kind)
    if kind == "layer":
      return nn.LayerNorm()(x)
    if kind == "batch":
      return nn.BatchNorm(use_running_average=not train, momentum=self.momentum)(x)
    return x


def layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array, eps: float = 1e-5) -> jax.Array:
  """Functional layer norm over the last axis, for use inside `lax.scan` step functions."""
  mean = jnp.mean(x, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps) * scale + bias


def apply_train(model: nn.Module, variables, *args, rngs=None, **kwargs):
  """Training-mode apply that also handles batch-norm state.

  Returns (output, variables'): when `variables` holds a 'batch_stats' collection it is made
  mutable and its updated running statistics come back in variables'; otherwise variables' is
  `variables` unchanged. Only 'params' should be differentiated; carry the rest along.
  """
  if "batch_stats" not in variables:
    return model.apply(variables, *args, train=True, rngs=rngs, **kwargs), variables
  out, updates = model.apply(variables, *args, train=True, rngs=rngs,
                             mutable=["batch_stats"], **kwargs)
  return out, {**variables, **updates}
