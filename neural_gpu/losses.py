"""Losses picked by name: `losses.get(name)(logits, targets, weights=None, **options) -> scalar`.

Conventions shared by every loss:
  logits: float (..., C), the model's raw outputs, classes on the last axis.
  targets: either int class labels of shape (...) (turned into one-hot), or float values /
    distributions of shape (..., C), the same shape as logits.
  weights: optional (...) per-position weights, e.g. the mask of real target positions.
  result: sum(weights * per_position_loss) / sum(weights), the weighted mean over positions
    (0 when every weight is 0); without weights, the plain mean over positions.

Per-position losses: softmax and KL sum over classes (they compare distributions); sigmoid
cross-entropy and squared error average over classes, so without weights they equal the usual
mean over every element.
"""

from typing import Callable

import jax
import jax.numpy as jnp


def _targets_like(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Int labels (...) -> one-hot (..., C); float targets must already have logits' shape."""
  if targets.ndim == logits.ndim - 1:
    if not jnp.issubdtype(targets.dtype, jnp.integer):
      raise ValueError(f"targets of shape {targets.shape} for logits {logits.shape} must be "
                       f"integer class labels, got {targets.dtype}")
    return jax.nn.one_hot(targets, logits.shape[-1], dtype=logits.dtype)
  if targets.shape != logits.shape:
    raise ValueError(f"targets shape {targets.shape} fits neither labels nor values for logits "
                     f"of shape {logits.shape}")
  return targets.astype(logits.dtype)


def _smooth(dist: jax.Array, label_smoothing: float) -> jax.Array:
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
  return (1.0 - label_smoothing) * dist + label_smoothing / dist.shape[-1]


def _weighted_mean(per_position: jax.Array, weights: jax.Array | None) -> jax.Array:
  if weights is None:
    return jnp.mean(per_position)
  weights = jnp.broadcast_to(weights, per_position.shape).astype(per_position.dtype)
  # The floor only matters when every weight is 0, where the numerator is 0 too.
  return jnp.sum(weights * per_position) / jnp.maximum(jnp.sum(weights), 1e-12)


def softmax_cross_entropy(logits, targets, weights=None, label_smoothing: float = 0.0):
  """-sum_c q_c log softmax(logits)_c, q = the (smoothed) target distribution.

  log_softmax subtracts the max logit first, so huge logits neither overflow nor give NaN.
  """
  q = _smooth(_targets_like(logits, targets), label_smoothing)
  return _weighted_mean(-jnp.sum(q * jax.nn.log_softmax(logits), axis=-1), weights)


def sigmoid_cross_entropy(logits, targets, weights=None):
  """Independent Bernoulli per class: mean_c [max(x,0) - x*z + log(1 + exp(-|x|))].

  That form equals -z log sigmoid(x) - (1-z) log(1 - sigmoid(x)) without overflow.
  """
  z = _targets_like(logits, targets)
  per_elem = jax.nn.relu(logits) - logits * z + jnp.log1p(jnp.exp(-jnp.abs(logits)))
  return _weighted_mean(jnp.mean(per_elem, axis=-1), weights)


def mean_squared_error(logits, targets, weights=None):
  """mean_c (logits - targets)^2: regression of the raw outputs (on one-hot for int labels)."""
  z = _targets_like(logits, targets)
  return _weighted_mean(jnp.mean(jnp.square(logits - z), axis=-1), weights)


def kl_divergence(logits, targets, weights=None, label_smoothing: float = 0.0):
  """KL(p || softmax(logits)) = sum_c p_c (log p_c - log q_c), with 0 log 0 = 0.

  Equals softmax cross-entropy minus the entropy of p, so it is 0 at a perfect fit even for
  soft targets.
  """
  p = _smooth(_targets_like(logits, targets), label_smoothing)
  per_position = jnp.sum(jax.scipy.special.xlogy(p, p) - p * jax.nn.log_softmax(logits), axis=-1)
  return _weighted_mean(per_position, weights)


def wrong_positions(logits, targets, mask) -> jax.Array:
  """Which positions the model gets wrong: argmax(logits) != targets where mask is set.

  logits (B, W, C) float, targets (B, W) int, mask (B, W) bool or 0/1. Returns bool (B, W). The
  one definition of an error that the training metrics and the evaluation both count.
  """
  return (jnp.argmax(logits, axis=-1) != targets) & (mask > 0)


DEFAULT = "softmax_cross_entropy"  # train.loss
LOSSES: dict[str, Callable[..., jax.Array]] = {
    "softmax_cross_entropy": softmax_cross_entropy,
    "sigmoid_cross_entropy": sigmoid_cross_entropy,
    "mean_squared_error": mean_squared_error,
    "kl_divergence": kl_divergence,
}


def names() -> list[str]:
  return sorted(LOSSES)


def get(name: str) -> Callable[..., jax.Array]:
  if name not in LOSSES:
    raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(names())}")
  return LOSSES[name]
