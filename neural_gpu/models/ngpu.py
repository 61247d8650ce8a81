"""The Neural GPU of Kaiser & Sutskever (2015): a convolutional GRU applied L times.

State s is (batch, L, h, m). It is stored with the height folded into channels,
(batch, L, h*m), so that the 3x3 convolution over (width, height) becomes one matmul of the
three width taps against a kernel that is banded in height (built once per call, outside the
time loop). XLA's CPU convolution is very slow at these channel counts; the matmul form is the
same arithmetic. `conv_impl='conv'` keeps the plain lax convolution, differentiated by autodiff
through `lax.scan`, as a reference and for backends where the library convolution wins.

The matmul form runs its time loop through `fast_scan.cgru_scan`, whose reverse pass is written
by hand (custom VJP): it keeps only what the reverse pass needs and computes the weight
gradients as one matmul over all steps after the loop (BENCHMARKS.md has the figures;
tests/test_fast_scan.py checks it against plain autodiff of the same loop, tests/oracles.py).
`remat=True` saves only the per-step state and recomputes the rest in the reverse pass.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import linen as nn

from neural_gpu.models import common, fast_scan

RELAXED_PARAMS = ("gate_kernel", "gate_bias", "cand_kernel", "cand_bias")

# conv_impl='auto' picks per backend. On the 2-core CPU the banded matmul with the custom VJP is
# ~15x faster than XLA's convolution (BENCHMARKS.md). GPU/TPU figures are pending: the matmul
# form is used there too until measured otherwise.
AUTO_CONV_IMPL = {"cpu": "matmul"}
CONV_IMPLS = ("auto", "matmul", "conv")


def resolve_conv_impl(conv_impl: str) -> str:
  if conv_impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl must be one of {', '.join(CONV_IMPLS)}, got {conv_impl!r}")
  if conv_impl == "auto":
    return AUTO_CONV_IMPL.get(jax.default_backend(), "matmul")
  return conv_impl


def fold_kernel(kernel: jax.Array, height: int) -> jax.Array:
  """(3 width, 3 height, m, n) conv kernel -> (3*height*m, height*n) banded matmul kernel.

  Row index is (width tap, input row, input channel), matching `width3_taps` on a folded state;
  column index is (output row, output channel). Input row hi feeds output row ho through kernel
  row hi - ho + 1, and not at all when |hi - ho| > 1: this is SAME zero padding in height.
  """
  kw, kh, m, n = kernel.shape
  band = jnp.stack([jnp.eye(height, k=1 - dh) for dh in range(kh)])  # [dh, hi, ho]
  folded = jnp.einsum("dio,wdcn->wicon", band, kernel)
  return folded.reshape(kw * height * m, height * n)


def conv3x3(state: jax.Array, kernel: jax.Array, height: int) -> jax.Array:
  """SAME 3x3 lax convolution of a folded state (B, L, h*m) with a (3, 3, m, k*m) kernel.

  The k output blocks of m channels come out one after the other, each folded over height,
  the same layout as the matmul form.
  """
  b, width, hm = state.shape
  m = hm // height
  x = state.reshape(b, width, height, m)
  y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  y = y.reshape(b, width, height, -1, m).transpose(0, 1, 3, 2, 4)
  return y.reshape(b, width, -1)


class NeuralGPU(nn.Module):
  """CGRU Neural GPU. Runs as many steps as each example's true length.

  Attributes:
    vocab_size: number of symbols, PAD (0) included.
    nmaps: m, channels per cell.
    height: h, rows of the state.
    num_layers: CGRUs applied per step.
    cutoff: c of the cutoff gate.
    dropout: rate of recurrent-state dropout (keep = 1 - dropout * 8 / L), training only.
    relax_copies: r, parameter-sharing relaxation; step t uses copy t mod r.
    conv_impl: 'matmul' (banded matmul), 'conv' (lax convolution; the reference), or 'auto'
      (per backend, see AUTO_CONV_IMPL); the same function.
    remat: keep only the per-step state for the reverse pass and recompute each step there
      (`jax.checkpoint` of the step with 'conv'): much less memory for large nmaps, about one
      extra forward pass of compute.
  """
  vocab_size: int
  nmaps: int = 24
  height: int = 4
  num_layers: int = 2
  cutoff: float = 1.2
  dropout: float = 0.0
  relax_copies: int = 1
  conv_impl: str = "auto"
  remat: bool = False

  @nn.compact
  def __call__(self, inputs: jax.Array, lengths: jax.Array, train: bool = False,
               trace: bool = False):
    """trace: also return every step's state and its readout (ModelOutput.trace)."""
    batch, width = inputs.shape
    m, h, layers, r = self.nmaps, self.height, self.num_layers, self.relax_copies
    conv_impl = resolve_conv_impl(self.conv_impl)

    embedding = self.param("embedding", nn.initializers.uniform(3.4), (self.vocab_size, m))
    embedding = (embedding - 1.7) * (jnp.arange(self.vocab_size) > 0)[:, None]  # PAD stays 0
    input_proj = self.param("input_proj", common.fan_in_init(m), (m, m))
    gate_kernel = self.param("gate_kernel", common.fan_in_init(9 * m), (r, layers, 3, 3, m, 2 * m))
    gate_bias = self.param("gate_bias", nn.initializers.zeros, (r, layers, 2 * m))
    cand_kernel = self.param("cand_kernel", common.fan_in_init(9 * m), (r, layers, 3, 3, m, m))
    cand_bias = self.param("cand_bias", nn.initializers.zeros, (r, layers, m))
    output = self.param("output", common.fan_in_init(m), (m, self.vocab_size))
    output_bias = self.param("output_bias", nn.initializers.zeros, (self.vocab_size,))

    mask = common.length_mask(lengths, width).astype(embedding.dtype)
    row0 = jnp.tanh(embedding[inputs]) @ input_proj
    state = jnp.concatenate([row0, jnp.zeros((batch, width, (h - 1) * m), row0.dtype)], axis=-1) * mask

    # Fold biases over height; +1.0 on the gates as in the reference, so they start open-ish.
    gate_bias_f = jnp.concatenate(
        [jnp.tile(gate_bias[..., :m], h), jnp.tile(gate_bias[..., m:], h)], axis=-1) + 1.0
    cand_bias_f = jnp.tile(cand_bias, h)

    use_dropout = train and self.dropout > 0.0
    keep = jnp.clip(1.0 - self.dropout * 8.0 / jnp.max(lengths).astype(jnp.float32), 0.5, 1.0)
    dropout_key = self.make_rng("dropout") if use_dropout else None
    hm = h * m
    readout = lambda s: s[..., :m] @ output + output_bias  # from the first height row

    def result(state, states):
      traced = None if states is None else {"states": states, "logits": readout(states)}
      return common.ModelOutput(readout(state), {}, traced)

    if conv_impl == "matmul":
      fold = jax.vmap(jax.vmap(lambda k: fold_kernel(k, h)))
      gate_w = jnp.concatenate([fold(gate_kernel[..., :m]), fold(gate_kernel[..., m:])], axis=-1)
      spec = fast_scan.ScanSpec(num_layers=layers, relax_copies=r, cutoff=self.cutoff,
                                dropout=use_dropout, remat=self.remat)
      weights = fast_scan.Weights(gate_w, gate_bias_f, fold(cand_kernel), cand_bias_f)
      if trace:
        return result(*fast_scan.cgru_trace(spec, weights, state, lengths, keep, dropout_key))
      return result(fast_scan.cgru_scan(spec, weights, state, lengths, keep, dropout_key), None)

    def step(state, t):  # conv_impl='conv': autodiff through this loop
      copy = t % r
      new = state
      if use_dropout:
        keep_mask = jax.random.bernoulli(jax.random.fold_in(dropout_key, t), keep, new.shape)
        new = jnp.where(keep_mask, new / keep, 0.0)
      for layer in range(layers):
        gates = conv3x3(new, gate_kernel[copy, layer], h) + gate_bias_f[copy, layer]
        update = common.cutoff_sigmoid(gates[..., :hm], self.cutoff)
        reset = common.cutoff_sigmoid(gates[..., hm:], self.cutoff)
        cand = jnp.tanh(conv3x3(reset * new, cand_kernel[copy, layer], h)
                        + cand_bias_f[copy, layer])
        new = (update * new + (1.0 - update) * cand) * mask
      running = (t < lengths)[:, None, None]
      new = jnp.where(running, new, state)
      return new, (new if trace else None)

    if self.remat:
      step = jax.checkpoint(step)
    initial = state
    state, after = jax.lax.scan(step, state, jnp.arange(width))
    return result(state, jnp.concatenate([initial[None], after]) if trace else None)


def relaxation_penalty(params) -> jax.Array:
  """sum over relaxed tensors and copies of ||v_i - mean_j v_j||^2 (0 when r == 1)."""
  total = jnp.zeros((), jnp.float32)
  for name in RELAXED_PARAMS:
    v = params[name]
    total += jnp.sum((v - v.mean(axis=0, keepdims=True)) ** 2)
  return total


def tie_copies(params):
  """Overwrites every relaxation copy with the mean of the copies."""
  params = dict(params)
  for name in RELAXED_PARAMS:
    v = params[name]
    params[name] = jnp.broadcast_to(v.mean(axis=0, keepdims=True), v.shape)
  return params


# -- the relaxation as a training rule (NGPU paper, sec. 3 "parameter sharing relaxation") ----
class Relaxation(NamedTuple):
  """Host state of the relaxation schedule: the weight of the relaxation penalty ('pull') and
  whether the copies are tied for good (1.0) or not yet (0.0). Saved in checkpoints as the host
  state's 'pull' and 'tied' entries."""
  pull: float
  tied: float = 0.0


class RelaxationRule:
  """Trains the r relaxed copies towards one shared weight (Kaiser & Sutskever 2015, sec. 3).

  The loss gets pull * relaxation_penalty(params) (the penalty named 'relaxation'). Each time the
  curriculum advances, the pull grows by train.pull_growth while below train.pull_max; once it is
  there an advance ties the copies (each becomes their mean). When the curriculum reaches its
  maximal length the copies are tied for good: every later update keeps them equal.
  """
  penalty = "relaxation"

  def __init__(self, train_config):
    self.start, self.growth = train_config.pull_start, train_config.pull_growth
    self.max = train_config.pull_max

  @classmethod
  def from_config(cls, config) -> "RelaxationRule | None":
    """The rule when config.model is a Neural GPU with relax_copies > 1, else None."""
    relaxed = config.model.name == "neural_gpu" and config.model.relax_copies > 1
    return cls(config.train) if relaxed else None

  def penalties(self, params) -> dict:
    return {self.penalty: relaxation_penalty(params)}

  def after_update(self, params, tied: jax.Array):
    """Inside the jit'd step: once tied for good (tied > 0), every copy equals their mean."""
    return jax.tree.map(lambda a, b: jnp.where(tied > 0, a, b), tie_copies(params), params)

  def on_curriculum(self, state: Relaxation, params, advanced: bool,
                    at_max: bool) -> tuple[Relaxation, Any]:
    """After a curriculum decision: grow the pull or tie the copies; tie for good at the
    curriculum's maximal length. Returns the new state and the (maybe tied) params."""
    pull, tied = state
    if advanced:
      if pull < self.max:
        pull *= self.growth
      else:
        params = tie_copies(params)
    if at_max and not tied:
      tied = 1.0
      params = tie_copies(params)
    return Relaxation(pull, tied), params
