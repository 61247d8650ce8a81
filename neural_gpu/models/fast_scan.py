"""The CGRU Neural GPU time loop with a hand-written reverse pass (`jax.custom_vjp`).

Why: autodiff through `lax.scan` saves more residuals than needed, accumulates every weight
gradient step by step inside the reverse loop, and differentiates through the per-step kernel
indexing; on the 2-core CPU its step was ~1.15x-1.2x slower (BENCHMARKS.md). Here

* the forward scan saves, per step and layer, the layer input x, the two gates and the
  candidate (4 * C floats a cell; C = height * nmaps);
* the reverse scan computes only the gradient with respect to the state (two matmuls per layer
  against kernels rearranged once, outside the loop) and emits the gate and candidate
  pre-activation gradients of every step;
* after the loop the weight gradients are ONE matmul per kernel over all steps and cells,
  `taps(x)^T @ dgates`.

With `remat=True` the forward saves only the state entering each step (C floats a cell); the
reverse scan recomputes the step and accumulates the weight gradients step by step, so memory
stays O(T * B * L * C) with a small constant (for large nmaps).

Without gradients (evaluation) the batch runs in cache-sized chunks (`chunked_over_batch`).

All arrays use the folded layout of `ngpu.py`: a state is (B, L, C) with the height folded into
channels, and a width-3 convolution is `width3_taps(x) @ w` with w of shape (3 * C_in, C_out).
The arithmetic is that of `NeuralGPU` with conv_impl='matmul'; tests/test_fast_scan.py checks
logits and every parameter gradient against plain autodiff of the same loops (tests/oracles.py)
and the lax.conv reference.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from neural_gpu.models import common


class ScanSpec(NamedTuple):
  """Static settings of the loop (hashable, a non-differentiable argument)."""
  num_layers: int
  relax_copies: int
  cutoff: float
  dropout: bool  # whether a dropout key and keep probability are used
  remat: bool


class Weights(NamedTuple):
  """Folded kernels: gate (r, layers, 3C, 2C) [update | reset], candidate (r, layers, 3C, C),
  and their folded biases (r, layers, 2C) and (r, layers, C), gate offset already added."""
  gate_w: jax.Array
  gate_b: jax.Array
  cand_w: jax.Array
  cand_b: jax.Array


def transpose_taps(w: jax.Array) -> jax.Array:
  """(3K, O) width-3 kernel -> (3O, K) kernel of its transpose convolution.

  If y = taps(x) @ w, the gradient dx = taps(dy) @ transpose_taps(w): position j of x feeds
  position j + 1 through tap 0, j through tap 1 and j - 1 through tap 2.
  """
  k = w.shape[-2] // 3
  w0, w1, w2 = w[..., :k, :], w[..., k:2 * k, :], w[..., 2 * k:, :]
  t = lambda a: jnp.swapaxes(a, -1, -2)
  return jnp.concatenate([t(w2), t(w1), t(w0)], axis=-2)


def _cutoff_grad(g: jax.Array, cutoff: float) -> jax.Array:
  """d gate / d pre-activation, from the gate value g = clip(c*sigmoid(p) - (c-1)/2, 0, 1)."""
  s = (g + (cutoff - 1.0) / 2.0) / cutoff
  return jnp.where((g > 0.0) & (g < 1.0), cutoff * s * (1.0 - s), 0.0)


def _keep_mask(key, t, keep, shape):
  return jax.random.bernoulli(jax.random.fold_in(key, t), keep, shape)


def _zoneout_take(spec, key, t, shape, dtype):
  """Which units of step t take the candidate under zoneout (Krueger et al. 2016): with
  spec.zoneout_sample a 0/1 draw, keep probability 1 - spec.zoneout, from its own stream of
  `key` (not the dropout masks'); otherwise the expectation 1 - spec.zoneout (inference)."""
  keep = 1.0 - spec.zoneout
  if not spec.zoneout_sample:
    return jnp.asarray(keep, dtype)
  return jax.random.bernoulli(jax.random.fold_in(jax.random.fold_in(key, t), 1), keep,
                              shape).astype(dtype)


def _layer(x, gw, gb, cw, cb, mask, cutoff):
  """One CGRU: returns (new state, gates [u | r], candidate)."""
  c_dim = x.shape[-1]
  gates = common.cutoff_sigmoid(common.width3_taps(x) @ gw + gb, cutoff)
  u, r = gates[..., :c_dim], gates[..., c_dim:]
  cand = jnp.tanh(common.width3_taps(r * x) @ cw + cb)
  return (u * x + (1.0 - u) * cand) * mask, gates, cand


def _step(spec, w, state, t, mask, lengths, keep, key):
  """One time step: returns (new state, per-layer residuals [(x, gates, cand)])."""
  copy = t % spec.relax_copies
  x = state
  if spec.dropout:
    x = jnp.where(_keep_mask(key, t, keep, x.shape), x / keep, 0.0)
  residuals = []
  for layer in range(spec.num_layers):
    new, gates, cand = _layer(x, w.gate_w[copy, layer], w.gate_b[copy, layer],
                              w.cand_w[copy, layer], w.cand_b[copy, layer], mask, spec.cutoff)
    residuals.append((x, gates, cand))
    x = new
  running = (t < lengths)[:, None, None]
  return jnp.where(running, x, state), residuals


def _layer_backward(g, x, gates, cand, mask, gw_t, cw_t, cutoff):
  """Reverse of `_layer` for the state: returns (d x, d gate pre-act, d candidate pre-act)."""
  c_dim = x.shape[-1]
  u, r = gates[..., :c_dim], gates[..., c_dim:]
  dn = g * mask
  d_cand = dn * (1.0 - u) * (1.0 - cand * cand)
  d_rx = common.width3_taps(d_cand) @ cw_t
  d_gates = jnp.concatenate([dn * (x - cand), d_rx * x], axis=-1) * _cutoff_grad(gates, cutoff)
  dx = dn * u + d_rx * r + common.width3_taps(d_gates) @ gw_t
  return dx, d_gates, d_cand


def _forward(spec, w, state, lengths, keep, key, save):
  width = state.shape[1]
  mask = common.length_mask(lengths, width)

  def body(s, t):
    new, residuals = _step(spec, w, s, t, mask, lengths, keep, key)
    if save == "none":
      return new, None
    if save == "state":
      return new, s
    return new, residuals

  return jax.lax.scan(body, state, jnp.arange(width))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def cgru_scan(spec: ScanSpec, w: Weights, state, lengths, keep, key):
  """Runs the Neural GPU loop for `state.shape[1]` steps; example b changes only while
  t < lengths[b]. keep/key: dropout keep probability and key (ignored unless spec.dropout)."""
  if spec.dropout:  # the dropout masks are drawn for the whole batch: no chunking
    return _forward(spec, w, state, lengths, keep, key, "none")[0]
  run = lambda s, l: _forward(spec, w, s, l, keep, key, "none")[0]
  return chunked_over_batch(run, 12 * state.shape[-1], state, lengths)


def cgru_trace(spec: ScanSpec, w: Weights, state, lengths, keep, key):
  """`cgru_scan`'s forward loop (no gradient), also returning every step's state: (final
  (B, L, C), states (T + 1, B, L, C)) with states[0] = `state` and states[-1] = final."""
  final, before = _forward(spec, w, state, lengths, keep, key, "state")
  return final, jnp.concatenate([before, final[None]])


def _fwd(spec, w, state, lengths, keep, key):
  final, saved = _forward(spec, w, state, lengths, keep, key,
                          "state" if spec.remat else "all")
  return final, (w, saved, lengths, keep, key)


# The no-gradient forward (evaluation) on a CPU runs the batch in chunks of about this many bytes
# of per-step working set, so that a long sequence's step stays in the last-level cache instead
# of streaming every intermediate through DRAM; examples are independent, so results are the
# same. Other backends run the batch whole: on a GPU the chunks' loop would run one after the
# other what the device can run side by side (at L=4001, m=96, one example per chunk).
CHUNK_BYTES = 8 << 20


def batch_chunk(batch: int, width: int, floats_per_cell: int) -> int:
  """Largest divisor of `batch` whose chunk's working set stays under CHUNK_BYTES (on a CPU;
  elsewhere `batch`)."""
  if jax.default_backend() != "cpu":
    return batch
  fit = max(1, CHUNK_BYTES // (4 * floats_per_cell * width))
  return max(d for d in range(1, min(fit, batch) + 1) if batch % d == 0)


def chunked_over_batch(fn, floats_per_cell: int, state, *per_example):
  """fn(state, *per_example) -> pytree of per-example arrays (batch first) or scalars to be
  summed; applied chunk by chunk (lax.map) when the batch is too big for the cache."""
  batch, width = state.shape[:2]
  chunk = batch_chunk(batch, width, floats_per_cell)
  if chunk >= batch:
    return fn(state, *per_example)
  split = lambda a: a.reshape((batch // chunk, chunk) + a.shape[1:])
  outs = jax.lax.map(lambda xs: fn(*xs), tuple(split(a) for a in (state,) + per_example))
  return jax.tree.map(lambda o: o.reshape((batch,) + o.shape[2:]) if o.ndim > 1 else o.sum(),
                      outs)


def _per_copy(stacked, r):
  """Splits a (T, ...) stack into r stacks of the steps t with t % r == copy."""
  if r == 1:
    return [stacked]
  return [stacked[c::r] for c in range(r)]


def _weight_grad(inputs, grads):
  """sum over steps and cells of taps(inputs)^T @ grads: (T, B, L, C) x (T, B, L, O) -> (3C, O)."""
  t, b, width, c_dim = inputs.shape
  taps = common.width3_taps(inputs.reshape(t * b, width, c_dim)).reshape(-1, 3 * c_dim)
  return jax.lax.dot_general(taps, grads.reshape(-1, grads.shape[-1]),
                             (((0,), (0,)), ((), ())))


def _bwd(spec, res, d_final):
  w, saved, lengths, keep, key = res
  width = d_final.shape[1]
  mask = common.length_mask(lengths, width)
  r, layers = spec.relax_copies, spec.num_layers
  gw_t = transpose_taps(w.gate_w)  # (r, layers, 6C, C)
  cw_t = transpose_taps(w.cand_w)  # (r, layers, 3C, C)

  def state_backward(ds, t, residuals):
    """Reverse of one step: returns (d state before the step, [(d gates, d cand)] per layer)."""
    copy = t % r
    running = (t < lengths)[:, None, None]
    g = jnp.where(running, ds, 0.0)
    outs = [None] * layers
    for layer in reversed(range(layers)):
      x, gates, cand = residuals[layer]
      g, d_gates, d_cand = _layer_backward(g, x, gates, cand, mask, gw_t[copy, layer],
                                           cw_t[copy, layer], spec.cutoff)
      outs[layer] = (d_gates, d_cand)
    if spec.dropout:
      g = jnp.where(_keep_mask(key, t, keep, g.shape), g / keep, 0.0)
    return jnp.where(running, g, ds), outs

  steps = jnp.arange(width)
  if not spec.remat:
    def body(ds, xs):
      t, residuals = xs
      return state_backward(ds, t, residuals)

    d_state, d_pre = jax.lax.scan(body, d_final, (steps, saved), reverse=True)
    grads = {name: [[None] * layers for _ in range(r)] for name in w._fields}
    for layer in range(layers):
      x, gates, _ = saved[layer]
      d_gates, d_cand = d_pre[layer]
      c_dim = x.shape[-1]
      rx = gates[..., c_dim:] * x
      for copy, (xc, rxc, dgc, dcc) in enumerate(zip(
          _per_copy(x, r), _per_copy(rx, r), _per_copy(d_gates, r), _per_copy(d_cand, r))):
        grads["gate_w"][copy][layer] = _weight_grad(xc, dgc)
        grads["cand_w"][copy][layer] = _weight_grad(rxc, dcc)
        grads["gate_b"][copy][layer] = jnp.sum(dgc, axis=(0, 1, 2))
        grads["cand_b"][copy][layer] = jnp.sum(dcc, axis=(0, 1, 2))
    d_w = Weights(**{name: jnp.stack([jnp.stack(per_layer) for per_layer in per_copy])
                     for name, per_copy in grads.items()})
  else:
    def body(carry, xs):
      ds, acc = carry
      t, state = xs
      _, residuals = _step(spec, w, state, t, mask, lengths, keep, key)
      ds, outs = state_backward(ds, t, residuals)
      copy = t % r
      for layer in range(layers):
        x, gates, _ = residuals[layer]
        d_gates, d_cand = outs[layer]
        c_dim = x.shape[-1]
        rx = gates[..., c_dim:] * x
        updates = {
            "gate_w": _weight_grad(x[None], d_gates[None]),
            "cand_w": _weight_grad(rx[None], d_cand[None]),
            "gate_b": jnp.sum(d_gates, axis=(0, 1)),
            "cand_b": jnp.sum(d_cand, axis=(0, 1)),
        }
        acc = acc._replace(**{k: getattr(acc, k).at[copy, layer].add(v)
                              for k, v in updates.items()})
      return (ds, acc), None

    zeros = jax.tree.map(jnp.zeros_like, w)
    (d_state, d_w), _ = jax.lax.scan(body, (d_final, zeros), (steps, saved), reverse=True)
  return d_w, d_state, None, None, None


cgru_scan.defvjp(_fwd, _bwd)


# -- the improved Neural GPU (DNGPU) ---------------------------------------------------------


class DiagSpec(NamedTuple):
  """Static settings of the DNGPU loop."""
  saturation_limit: float
  dropout: float  # rate on the candidate (0: none)
  extra_iters: int = 0  # loop iterations beyond the width, for examples that run longer
  reset_offset: float = 0.5  # added to the gate pre-activations after the bias
  update_offset: float = 0.7
  zoneout: float = 0.0  # rate at which a unit keeps its shifted state instead of updating
  zoneout_sample: bool = False  # draw zoneout masks (training); False: their expectation


class DiagWeights(NamedTuple):
  """gate (3m, 2m) [reset | update], gate bias (2m,), candidate (3m, m), candidate bias (m,)."""
  gate_w: jax.Array
  gate_b: jax.Array
  cand_w: jax.Array
  cand_b: jax.Array


def diagonal_shift(state: jax.Array, inverse: bool = False) -> jax.Array:
  """The DNGPU's fixed per-channel move (see dngpu.diagonal_shift); `inverse` is its
  transpose, used for gradients: the blocks move the other way."""
  m = state.shape[-1]
  third = m // 3
  stay = m - 2 * third
  sign = -1 if inverse else 1
  return jnp.concatenate([
      state[..., :stay],
      common.shift_width(state[..., stay:stay + third], -sign),
      common.shift_width(state[..., stay + third:], sign),
  ], axis=-1)


def _hard_grad(pre: jax.Array, scale: float) -> jax.Array:
  """Derivative of clip(scale * pre + offset) over its linear region |pre| < 1."""
  return jnp.where(jnp.abs(pre) < 1.0, scale, 0.0)


def _saturation(pre, real, limit):
  return jnp.sum(jax.nn.relu(jnp.abs(pre) - limit) * real)


def _saturation_grad(pre, real, limit):
  return jnp.where(jnp.abs(pre) > limit, jnp.sign(pre), 0.0) * real


def _diag_step(spec, w, state, t, mask, steps, key):
  """One DNGPU step: (new state, saturation of this step, residuals (state, gate pre-act,
  candidate pre-act))."""
  m = state.shape[-1]
  offset = jnp.concatenate([jnp.full((m,), spec.reset_offset, state.dtype),
                            jnp.full((m,), spec.update_offset, state.dtype)])
  gates_pre = common.width3_taps(state) @ w.gate_w + w.gate_b + offset
  gates = common.hard_sigmoid(gates_pre)
  reset, update = gates[..., :m], gates[..., m:]
  cand_pre = common.width3_taps(reset * state) @ w.cand_w + w.cand_b
  cand = common.hard_tanh(cand_pre)
  if spec.dropout:
    keep = _keep_mask(key, t, 1.0 - spec.dropout, cand.shape)
    cand = jnp.where(keep, cand / (1.0 - spec.dropout), 0.0)
  if spec.zoneout:  # a zoned-out unit keeps its shifted state: its update gate becomes 1
    update = 1.0 - (1.0 - update) * _zoneout_take(spec, key, t, update.shape, update.dtype)
  new = (update * diagonal_shift(state) + (1.0 - update) * cand) * mask
  running = (t < steps)[:, None, None]
  # Counted on real cells of running examples only, so bucket padding does not dilute it.
  real = mask * running
  sat = (_saturation(gates_pre, real, spec.saturation_limit)
         + _saturation(cand_pre, real, spec.saturation_limit))
  return jnp.where(running, new, state), sat, (state, gates_pre, cand_pre)


def _diag_forward(spec, w, state, lengths, steps, key, save):
  width = state.shape[1]
  mask = common.length_mask(lengths, width)

  def body(carry, t):
    s, sat = carry
    new, step_sat, residuals = _diag_step(spec, w, s, t, mask, steps, key)
    return (new, sat + step_sat), (residuals if save else None)

  zero = jnp.zeros((), state.dtype)
  return jax.lax.scan(body, (state, zero), jnp.arange(width + spec.extra_iters))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def dngpu_scan(spec: DiagSpec, w: DiagWeights, state, lengths, steps, key):
  """Runs the DNGPU loop for `state.shape[1] + spec.extra_iters` iterations; example b has
  lengths[b] real cells and changes while t < steps[b]. Returns (final state, summed
  saturation cost over real cells of running examples)."""
  run = lambda s, l, n: _diag_forward(spec, w, s, l, n, key, False)[0]
  if spec.dropout or spec.zoneout_sample:  # masks are drawn for the whole batch: no chunking
    return run(state, lengths, steps)
  return chunked_over_batch(run, 12 * state.shape[-1], state, lengths, steps)


def dngpu_trace(spec: DiagSpec, w: DiagWeights, state, lengths, steps, key):
  """`dngpu_scan`'s forward loop (no gradient), also returning every step's state: (final
  (B, L, m), saturation, states (T + 1, B, L, m)), states[0] = `state`, states[-1] = final.
  The states are the residuals the reverse pass saves (the state entering each step)."""
  (final, sat), (before, _, _) = _diag_forward(spec, w, state, lengths, steps, key, True)
  return final, sat, jnp.concatenate([before, final[None]])


def _diag_fwd(spec, w, state, lengths, steps, key):
  (final, sat), saved = _diag_forward(spec, w, state, lengths, steps, key, True)
  return (final, sat), (w, saved, lengths, steps, key)


def _diag_bwd(spec, res, cotangents):
  w, saved, lengths, steps, key = res
  d_final, d_sat = cotangents
  width = d_final.shape[1]
  m = d_final.shape[-1]
  mask = common.length_mask(lengths, width)
  gw_t = transpose_taps(w.gate_w)  # (6m, m)
  cw_t = transpose_taps(w.cand_w)  # (3m, m)
  limit = spec.saturation_limit

  def body(ds, xs):
    t, (state, gates_pre, cand_pre) = xs
    running = (t < steps)[:, None, None]
    real = mask * running
    gates = common.hard_sigmoid(gates_pre)
    reset, update = gates[..., :m], gates[..., m:]
    cand = common.hard_tanh(cand_pre)
    dn = jnp.where(running, ds, 0.0) * mask
    # Zoneout makes the update gate 1 - (1 - u) * z; z = 1 without it.
    z = _zoneout_take(spec, key, t, update.shape, update.dtype) if spec.zoneout else 1.0
    update = 1.0 - (1.0 - update) * z
    d_cand = dn * (1.0 - update)
    if spec.dropout:
      keep = _keep_mask(key, t, 1.0 - spec.dropout, cand.shape)
      cand = jnp.where(keep, cand / (1.0 - spec.dropout), 0.0)
      d_cand = jnp.where(keep, d_cand / (1.0 - spec.dropout), 0.0)
    shifted = diagonal_shift(state)
    d_cand_pre = (d_cand * _hard_grad(cand_pre, 1.0)
                  + d_sat * _saturation_grad(cand_pre, real, limit))
    d_rs = common.width3_taps(d_cand_pre) @ cw_t
    d_gates = jnp.concatenate([d_rs * state, dn * (shifted - cand) * z], axis=-1)
    d_gates_pre = (d_gates * _hard_grad(gates_pre, 0.5)
                   + d_sat * _saturation_grad(gates_pre, real, limit))
    d_state = (diagonal_shift(dn * update, inverse=True) + d_rs * reset
               + common.width3_taps(d_gates_pre) @ gw_t)
    return jnp.where(running, d_state, ds), (d_gates_pre, d_cand_pre)

  times = jnp.arange(width + spec.extra_iters)
  d_state, (d_gates_pre, d_cand_pre) = jax.lax.scan(body, d_final, (times, saved), reverse=True)
  states, gates_pre, _ = saved
  reset = common.hard_sigmoid(gates_pre[..., :m])
  d_w = DiagWeights(
      gate_w=_weight_grad(states, d_gates_pre),
      gate_b=jnp.sum(d_gates_pre, axis=(0, 1, 2)),
      cand_w=_weight_grad(reset * states, d_cand_pre),
      cand_b=jnp.sum(d_cand_pre, axis=(0, 1, 2)))
  return d_w, d_state, None, None, None


dngpu_scan.defvjp(_diag_fwd, _diag_bwd)
