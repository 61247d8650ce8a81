"""Plain-autodiff references for the models' time loops (test oracles, not product code).

`cgru_scan` and `dngpu_scan` take the arguments of `fast_scan.cgru_scan` / `fast_scan.dngpu_scan`
and compute the same function as a plain `lax.scan`, so that `jax.grad` differentiates them by
autodiff instead of the hand-written reverse passes. `autodiff_loops()` swaps them in:

  with oracles.autodiff_loops():
    grads = jax.jit(jax.grad(loss))(params)  # traced here: the models run these loops

tests/test_fast_scan.py compares the custom VJPs against them; the benchmarks time them
(`benchmarks/train_step.py --autodiff`, `benchmarks/compare.py --variant=label:loop=autodiff`).
"""

import contextlib

import jax
import jax.numpy as jnp

from neural_gpu.models import common, dngpu, fast_scan


def cgru_scan(spec: fast_scan.ScanSpec, w: fast_scan.Weights, state, lengths, keep, key):
  """The Neural GPU loop (matmul form) of `fast_scan.cgru_scan`, differentiated by autodiff;
  spec.remat: `jax.checkpoint` of the step. Returns the final state (B, L, C)."""
  width, c_dim = state.shape[1:]
  mask = common.length_mask(lengths, width)

  def step(state, t):
    copy = t % spec.relax_copies
    new = state
    if spec.dropout:
      keep_mask = jax.random.bernoulli(jax.random.fold_in(key, t), keep, new.shape)
      new = jnp.where(keep_mask, new / keep, 0.0)
    for layer in range(spec.num_layers):
      gates = common.width3_taps(new) @ w.gate_w[copy, layer] + w.gate_b[copy, layer]
      update = common.cutoff_sigmoid(gates[..., :c_dim], spec.cutoff)
      reset = common.cutoff_sigmoid(gates[..., c_dim:], spec.cutoff)
      cand = jnp.tanh(common.width3_taps(reset * new) @ w.cand_w[copy, layer]
                      + w.cand_b[copy, layer])
      new = (update * new + (1.0 - update) * cand) * mask
    running = (t < lengths)[:, None, None]
    return jnp.where(running, new, state), None

  if spec.remat:
    step = jax.checkpoint(step)
  return jax.lax.scan(step, state, jnp.arange(width))[0]


def dngpu_scan(spec: fast_scan.DiagSpec, w: fast_scan.DiagWeights, state, lengths, steps, key):
  """The DNGPU loop of `fast_scan.dngpu_scan`, differentiated by autodiff. Returns (final state
  (B, L, m), saturation cost summed over real cells of running examples)."""
  width, m = state.shape[1:]
  mask = common.length_mask(lengths, width)
  gate_offset = jnp.concatenate([jnp.full((m,), spec.reset_offset),
                                 jnp.full((m,), spec.update_offset)]).astype(state.dtype)
  saturation = lambda pre, real: jnp.sum(jax.nn.relu(jnp.abs(pre) - spec.saturation_limit) * real)

  def step(carry, t):
    state, sat = carry
    gates_pre = common.width3_taps(state) @ w.gate_w + w.gate_b + gate_offset
    gates = common.hard_sigmoid(gates_pre)
    reset, update = gates[..., :m], gates[..., m:]
    cand_pre = common.width3_taps(reset * state) @ w.cand_w + w.cand_b
    cand = common.hard_tanh(cand_pre)
    if spec.dropout:
      keep = jax.random.bernoulli(jax.random.fold_in(key, t), 1 - spec.dropout, cand.shape)
      cand = jnp.where(keep, cand / (1 - spec.dropout), 0.0)
    if spec.zoneout:  # a zoned-out unit keeps its shifted state
      zone_key = jax.random.fold_in(jax.random.fold_in(key, t), 1)
      take = (jax.random.bernoulli(zone_key, 1 - spec.zoneout, cand.shape)
              if spec.zoneout_sample else 1 - spec.zoneout)
      cand = take * cand + (1 - take) * dngpu.diagonal_shift(state)
    new = (update * dngpu.diagonal_shift(state) + (1.0 - update) * cand) * mask
    running = (t < steps)[:, None, None]
    real = mask * running
    step_sat = saturation(gates_pre, real) + saturation(cand_pre, real)
    return (jnp.where(running, new, state), sat + step_sat), None

  (state, sat), _ = jax.lax.scan(step, (state, jnp.zeros((), state.dtype)),
                                 jnp.arange(width + spec.extra_iters))
  return state, sat


@contextlib.contextmanager
def autodiff_loops():
  """Within the block, models run `cgru_scan` and `dngpu_scan` above instead of fast_scan's
  custom-VJP loops, in the programs traced there (a function jit traced before keeps its trace;
  programs traced after the block are not affected)."""
  saved = fast_scan.cgru_scan, fast_scan.dngpu_scan
  fast_scan.cgru_scan, fast_scan.dngpu_scan = cgru_scan, dngpu_scan
  try:
    yield
  finally:
    fast_scan.cgru_scan, fast_scan.dngpu_scan = saved
