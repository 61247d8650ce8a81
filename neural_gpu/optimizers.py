"""Optimizers and learning-rate schedules, picked by name from `config.optimizer` (a whole
section, every field experiments/base.py gives it).

The trainer multiplies every update by a host-side `lr_scale` (decay on plateau or on stall), so
the transformation built here holds the base learning rate and its schedule only.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


def _adam(c):
  return optax.scale_by_adam(b1=c.b1, b2=c.b2, eps=c.eps)


def _adamax(c):
  if c.b2_schedule == "dngpu":
    return scale_by_adamax_dngpu(b1=c.b1, eps=c.eps, clip_multiplier=c.clip_multiplier,
                                 bias_correction=c.bias_correction)
  return optax.scale_by_adamax(b1=c.b1, b2=c.b2, eps=c.eps)


def dngpu_b2(step):
  """DNGPU: beta2 = 1 - max(5e-4, 0.01 * 0.5^(step / 2000)); short memory early, long later."""
  return 1.0 - jnp.maximum(5e-4, 0.01 * 0.5 ** (step / 2000.0))


class AdamaxState(NamedTuple):
  count: jax.Array
  mu: Any
  nu: Any


def scale_by_adamax_dngpu(b1: float = 0.9, eps: float = 1e-8, clip_multiplier: float = 0.0,
                          clip_epsilon: float = 1e-4,
                          bias_correction: bool = True) -> optax.GradientTransformation:
  """AdaMax whose beta2 follows `dngpu_b2`: update = m_t / (1 - b1^t) / (u_t + eps), with
  m_t = b1 m + (1 - b1) g and u_t = max(beta2 u, |g|) (Kingma & Ba 2014, section 7.1).

  bias_correction=False drops the 1 / (1 - b1^t) factor, as the DNGPU reference's AdaMax
  (adamax.py) does: its first steps are then smaller (0.1x the gradient's sign at step 1).

  clip_multiplier > 0 clips each gradient element to +-(clip_multiplier * its running max +
  clip_epsilon) first, as the DNGPU reference's AdaMax does (1.2): one outlier gradient then
  cannot inflate the running max, which with beta2 near 1 would shrink that parameter's steps
  for thousands of steps. From a zero max the first steps are close to sign descent.
  """

  def init(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return AdamaxState(jnp.zeros((), jnp.int32), zeros, zeros)

  def update(grads, state, params=None):
    if clip_multiplier > 0.0:
      grads = jax.tree.map(lambda g, n: jnp.clip(g, -(clip_multiplier * n + clip_epsilon),
                                                 clip_multiplier * n + clip_epsilon),
                           grads, state.nu)
    count = state.count + 1
    b2 = dngpu_b2(state.count.astype(jnp.float32))
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
    nu = jax.tree.map(lambda n, g: jnp.maximum(b2 * n, jnp.abs(g)), state.nu, grads)
    correction = 1 - b1 ** count.astype(jnp.float32) if bias_correction else 1.0
    # n + eps is 0 only where every gradient so far was 0 (the PAD embedding row), and m with it.
    updates = jax.tree.map(lambda m, n: m / correction / jnp.where(n + eps > 0, n + eps, 1), mu, nu)
    return updates, AdamaxState(count, mu, nu)

  return optax.GradientTransformation(init, update)


def _rmsprop(c):
  return optax.scale_by_rms(decay=c.decay, eps=c.eps)


def _adagrad(c):
  return optax.scale_by_rss(initial_accumulator_value=0.1, eps=c.eps)


def _momentum(c, nesterov=False):
  return optax.trace(decay=c.momentum, nesterov=nesterov)


_DIRECTIONS = {
    "sgd": lambda c: optax.identity(),
    "momentum": _momentum,
    "nesterov": lambda c: _momentum(c, nesterov=True),
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adam": _adam,
    "adamax": _adamax,
}


def names() -> list[str]:
  return sorted(_DIRECTIONS)


def schedule(c) -> optax.Schedule:
  """Base learning rate over steps: constant, exponential decay, or linear warmup then constant."""
  lr = c.learning_rate
  kind = c.schedule
  if kind == "constant":
    return optax.constant_schedule(lr)
  if kind == "exponential":  # constant until decay_start, then x decay_rate every decay_steps
    return optax.exponential_decay(lr, c.decay_steps, c.decay_rate, transition_begin=c.decay_start,
                                   end_value=c.min_learning_rate)
  if kind == "warmup":
    return optax.linear_schedule(0.0, lr, c.warmup_steps)
  raise ValueError(f"unknown learning-rate schedule {kind!r}; valid: constant, exponential, warmup")


def make(c) -> optax.GradientTransformation:
  """Clip (global norm and/or per element), then the named direction, then -learning rate."""
  if c.name not in _DIRECTIONS:
    raise ValueError(f"unknown optimizer {c.name!r}; valid optimizers: {', '.join(names())}")
  if c.clip_multiplier and (c.name, c.b2_schedule) != ("adamax", "dngpu"):
    raise ValueError("optimizer.clip_multiplier needs optimizer.name=adamax with "
                     "optimizer.b2_schedule=dngpu; set it to 0 for other optimizers")
  parts = []
  if c.clip_value:
    parts.append(optax.clip(c.clip_value))
  if c.clip_norm:
    parts.append(optax.clip_by_global_norm(c.clip_norm))
  parts.append(_DIRECTIONS[c.name](c))
  if c.weight_decay:
    parts.append(optax.add_decayed_weights(c.weight_decay))
  lr = schedule(c)
  parts.append(optax.scale_by_schedule(lambda step: -lr(step)))
  return optax.chain(*parts)


def gradient_noise(grads: Any, key: jax.Array, step: jax.Array, eta: float, decay: float) -> Any:
  """Adds N(0, eta / (1 + step)^decay) to every gradient (the annealed noise of Neelakantan et al.)."""
  std = jnp.sqrt(eta / (1.0 + step.astype(jnp.float32)) ** decay)
  leaves, treedef = jax.tree.flatten(grads)
  keys = jax.random.split(key, len(leaves))
  noisy = [g + std * jax.random.normal(k, g.shape, g.dtype) for g, k in zip(leaves, keys)]
  return jax.tree.unflatten(treedef, noisy)


def lr_gradient_noise(grads: Any, key: jax.Array, learning_rate: jax.Array, scale: float) -> Any:
  """Adds truncated N(0, 1) (cut at +-2 standard deviations) * learning_rate * scale to every
  gradient, as the DNGPU reference does (DNGPU_model.py, scale 1e-4); learning_rate is the
  current one, decays included."""
  leaves, treedef = jax.tree.flatten(grads)
  keys = jax.random.split(key, len(leaves))
  noisy = [g + learning_rate * scale * jax.random.truncated_normal(k, -2.0, 2.0, g.shape, g.dtype)
           for g, k in zip(leaves, keys)]
  return jax.tree.unflatten(treedef, noisy)
