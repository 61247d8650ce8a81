"""The improved Neural GPU of Freivalds & Liepins (2017).

1-D state (batch, L, m), one diagonal convolutional GRU per step with shared weights, hard
nonlinearities, and a saturation cost on their pre-activations that keeps them out of the flat
regions. The width-3 convolutions are matmuls over the three stacked width taps.

The time loop runs through `fast_scan.dngpu_scan`, whose reverse pass is written by hand (custom
VJP) so that the weight gradients are one matmul over all steps after the loop
(tests/test_fast_scan.py checks it against plain autodiff of the same loop, tests/oracles.py).
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from neural_gpu.models import common, fast_scan

SATURATION_LIMIT = 0.9


def diagonal_shift(state: jax.Array) -> jax.Array:
  """The diagonal gate's fixed move: first m - 2*(m//3) channels stay, the next m//3 take
  position i-1, the last m//3 take position i+1 (zero beyond the ends)."""
  m = state.shape[-1]
  third = m // 3
  stay = m - 2 * third
  return jnp.concatenate([
      state[..., :stay],
      common.shift_width(state[..., stay:stay + third], -1),
      common.shift_width(state[..., stay + third:], 1),
  ], axis=-1)


class DNGPU(nn.Module):
  """Improved Neural GPU. Runs as many steps as each example's true length.

  Attributes:
    vocab_size: number of symbols, PAD (0) included.
    nmaps: m, channels per position.
    dropout: rate of dropout on the candidate, training only.
    input_dropout: rate of dropout on the embedded input, training only (the reference applies
      its one rate to both; 0 here keeps the input whole).
    extra_steps: training only: each example runs its length plus a random number of steps,
      uniform in [0, extra_steps * length], so that a rule tied to exactly L steps is not
      enough (the loop then has ceil(extra_steps * width) more iterations); 0: off.
    zoneout: rate at which each unit of the state keeps its (diagonally shifted) previous value
      instead of updating, drawn per unit and step in training (and Monte Carlo dropout); the
      deterministic pass uses its expectation, so that, unlike the candidate's inverted
      dropout, the state stays within [-1, 1] and at the same scale in training and at test
      (zoneout: Krueger et al. 2016). 0: off.
    bin_steps: training only: every example runs the padded width of its batch in steps (its
      length bin's width, 1 to 41/L times its length), as the DNGPU reference trains; the
      mask keeps the cells beyond each example at 0. False: each runs its own length.
  """
  vocab_size: int
  nmaps: int = 48
  dropout: float = 0.0
  input_dropout: float = 0.0
  extra_steps: float = 0.0
  bin_steps: bool = False
  zoneout: float = 0.0

  @nn.compact
  def __call__(self, inputs: jax.Array, lengths: jax.Array, train: bool = False,
               trace: bool = False, mc_dropout: bool = False):
    """trace: also return every step's state and its readout (ModelOutput.trace).

    mc_dropout: at inference (train=False), keep the candidate's dropout and the zoneout draws
    on (needs a "dropout" rng), so that several passes can be averaged: Monte Carlo dropout
    (Gal & Ghahramani 2016), evaluate.py's eval.mc_dropout_samples. The input is read whole and
    every example runs its own length, as in deterministic inference."""
    batch, width = inputs.shape
    m = self.nmaps
    # Glorot-uniform as in the reference: a large input scale would saturate htanh at once.
    input_proj = self.param("input_proj", common.fan_in_init((self.vocab_size + m) / 2),
                            (self.vocab_size, m))
    gate_kernel = self.param("gate_kernel", common.fan_in_init(3 * m), (3 * m, 2 * m))
    gate_bias = self.param("gate_bias", nn.initializers.zeros, (2 * m,))
    cand_kernel = self.param("cand_kernel", common.fan_in_init(3 * m), (3 * m, m))
    cand_bias = self.param("cand_bias", nn.initializers.zeros, (m,))
    output = self.param("output", common.fan_in_init(m), (m, self.vocab_size))
    output_bias = self.param("output_bias", nn.initializers.zeros, (self.vocab_size,))

    mask = common.length_mask(lengths, width).astype(input_proj.dtype)
    # One-hot then a 1x1 projection is a row lookup; PAD maps to 0 like every masked cell.
    input_pre = input_proj[inputs] * (inputs > 0)[..., None]
    state = common.hard_tanh(input_pre) * mask
    state = nn.Dropout(self.input_dropout)(state, deterministic=not train)
    # The input's saturation counts once per step it feeds, as in the reference.
    input_sat = jnp.sum(jax.nn.relu(jnp.abs(input_pre) - SATURATION_LIMIT) * mask
                        * lengths[:, None, None].astype(state.dtype))
    use_dropout = (train or mc_dropout) and self.dropout > 0.0
    sample_zoneout = (train or mc_dropout) and self.zoneout > 0.0
    dropout_key = self.make_rng("dropout") if use_dropout or sample_zoneout else None
    steps, extra_iters = lengths, 0
    if train and self.bin_steps:
      steps = jnp.full_like(lengths, width)
    if train and self.extra_steps > 0.0:
      extra_iters = math.ceil(self.extra_steps * width)
      most = jnp.floor(self.extra_steps * lengths.astype(jnp.float32)) + 1.0
      draw = jax.random.uniform(self.make_rng("dropout"), lengths.shape)
      steps = steps + jnp.floor(draw * most).astype(lengths.dtype)

    spec = fast_scan.DiagSpec(SATURATION_LIMIT, self.dropout if use_dropout else 0.0, extra_iters,
                              zoneout=self.zoneout, zoneout_sample=sample_zoneout)
    weights = fast_scan.DiagWeights(gate_kernel, gate_bias, cand_kernel, cand_bias)
    states = None
    if trace:
      state, sat, states = fast_scan.dngpu_trace(spec, weights, state, lengths, steps, dropout_key)
    else:
      state, sat = fast_scan.dngpu_scan(spec, weights, state, lengths, steps, dropout_key)
    # Summed over units, averaged over (step, cell): example b runs lengths[b] steps over
    # lengths[b] cells (its extra training steps are not in the count; the trainer re-estimates
    # the cost's weight from the loss anyway).
    cell_steps = jnp.maximum(jnp.sum(lengths.astype(state.dtype) ** 2), 1.0)
    sat_cost = (sat + input_sat) / cell_steps
    logits = state @ output + output_bias
    traced = None if states is None else {"states": states,
                                          "logits": states @ output + output_bias}
    return common.ModelOutput(logits, {"saturation": sat_cost}, traced)


# -- the saturation cost's weight as a training rule ---------------------------------------------
class Saturation(NamedTuple):
  """Host state: the weight of the 'saturation' penalty, re-estimated every
  train.schedule_every steps (saved in checkpoints as the host state's 'saturation_weight')."""
  weight: float


def reestimate_saturation_weight(state: Saturation, lr: float, mean_loss: float,
                                 saturation_sum: float, count: int) -> Saturation:
  """Keeps the saturation term near lr * task loss, as the DNGPU reference does (Freivalds &
  Liepins 2017, sec. 3): weight = lr * mean_loss / mean_saturation, clipped to [1e-20, 1e-3].
  saturation_sum: the penalty summed over the `count` steps of the window; a window without
  saturation (sum 0) keeps the weight."""
  if not saturation_sum > 0:
    return state
  target = lr * mean_loss / (saturation_sum / max(count, 1))
  return Saturation(float(np.clip(target, 1e-20, 1e-3)))
