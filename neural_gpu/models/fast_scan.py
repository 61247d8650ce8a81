"""The CGRU Neural GPU time loop with a hand-written reverse pass (`jax.custom_vjp`).

Why: differentiating `lax.scan` automatically makes XLA accumulate every weight gradient one
step at a time (T small matmuls with a transposed operand, plus bookkeeping for the stacked
residuals), which on a CPU costs several times the forward pass. Here

* the forward scan saves, per step and layer, the layer input x, the two gates and the
  candidate (4 * C floats a cell; C = height * nmaps);
* the reverse scan computes only the gradient with respect to the state (two matmuls per layer
  against kernels rearranged once, outside the loop) and emits the gate and candidate
  pre-activation gradients of every step;
* after the loop the weight gradients are ONE matmul per kernel over all steps and cells,
  `taps(x)^T @ dgates`, which runs near the matmul roofline.

With `remat=True` the forward saves only the state entering each step (C floats a cell); the
reverse scan recomputes the step and accumulates the weight gradients step by step, so memory
stays O(T * B * L * C) with a small constant (for large nmaps).

All arrays use the folded layout of `ngpu.py`: a state is (B, L, C) with the height folded into
channels, and a width-3 convolution is `width3_taps(x) @ w` with w of shape (3 * C_in, C_out).
The arithmetic is that of `NeuralGPU` with conv_impl='matmul'; tests/test_fast_scan.py checks
logits and every parameter gradient against plain autodiff and the lax.conv reference.
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
  final, _ = _forward(spec, w, state, lengths, keep, key, "none")
  return final


def _fwd(spec, w, state, lengths, keep, key):
  final, saved = _forward(spec, w, state, lengths, keep, key,
                          "state" if spec.remat else "all")
  return final, (w, saved, lengths, keep, key)


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
