"""Pieces shared by the models: the output type, masks, width shifts and activations."""

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class NotApplicable(ValueError):
  """A model cannot run at this length by construction (e.g. an MLP built for a fixed width).

  The evaluator reports such lengths as not applicable instead of inventing a number.
  """


class ModelOutput(NamedTuple):
  """What every model returns.

  logits: float32 (batch, length, vocab).
  penalties: named float32 scalars (e.g. the DNGPU 'saturation' cost). The trainer adds each one
    to the loss times the weight its config gives it, and logs them.
  trace: None, or, when a model with a time loop is called with trace=True, every step's state
    from that same loop (neural_gpu/visualize.py draws it):
      "states": float32 (T + 1, batch, L, C), states[t] the state after t steps (states[0] the
        embedded input, states[-1] the state the logits are read from); C = height * nmaps
        for the Neural GPU (height folded into channels), nmaps for the DNGPU. Recurrent nets:
        (2L, batch, hidden), the top layer's output at each read-then-emit step.
      "logits": float32 (T + 1, batch, L, vocab) (recurrent: (2L, batch, vocab)), the model's
        readout applied to each of those states.
  """
  logits: jax.Array
  penalties: dict[str, Any]
  trace: dict[str, Any] | None = None


def length_mask(lengths: jax.Array, width: int) -> jax.Array:
  """(batch,) true lengths -> (batch, width, 1) float mask, 1 on real positions."""
  return (jnp.arange(width)[None, :] < lengths[:, None]).astype(jnp.float32)[..., None]


def shift_width(x: jax.Array, offset: int) -> jax.Array:
  """out[:, i] = x[:, i + offset] along axis 1, zero where that falls outside.

  Zero fill (never wrap-around, never reading past the end) is what SAME zero padding means.
  """
  if offset == 0:
    return x
  zeros = jnp.zeros_like(x[:, :abs(offset)])
  if offset > 0:
    return jnp.concatenate([x[:, offset:], zeros], axis=1)
  return jnp.concatenate([zeros, x[:, :offset]], axis=1)


def width3_taps(x: jax.Array) -> jax.Array:
  """Stacks the left neighbour, the position itself and the right neighbour on the last axis.

  A width-3 SAME convolution over axis 1 is then one matmul with a (3*C, C_out) kernel.
  """
  return jnp.concatenate([shift_width(x, -1), x, shift_width(x, 1)], axis=-1)


def cutoff_sigmoid(x: jax.Array, cutoff: float) -> jax.Array:
  """The NGPU gate: a sigmoid stretched by `cutoff` and clipped, so it saturates exactly."""
  return jnp.clip(cutoff * jax.nn.sigmoid(x) - (cutoff - 1.0) / 2.0, 0.0, 1.0)


def hard_sigmoid(x: jax.Array) -> jax.Array:
  return jnp.clip(0.5 * x + 0.5, 0.0, 1.0)


def hard_tanh(x: jax.Array) -> jax.Array:
  return jnp.clip(x, -1.0, 1.0)


def fan_in_init(fan_in: int, scale: float = 1.0):
  """Uniform init with variance scale/fan_in, where fan_in is given explicitly.

  Convolution kernels here are stored in shapes whose leading axes are not the fan-in, so the
  fan-in is passed rather than inferred.
  """
  limit = (3.0 * scale / fan_in) ** 0.5

  def init(key, shape, dtype=jnp.float32):
    # Drawn flat then reshaped: the same values, but N-D uniform draws compile several times slower.
    size = math.prod(shape)
    return jax.random.uniform(key, (size,), dtype, -limit, limit).reshape(shape)

  return init
