"""Recurrent baselines (Elman RNN, GRU, LSTM, recurrent highway network) on the CH protocol.

Read-then-emit, as in the Chomsky-hierarchy benchmark: example b reads its lengths[b] input
symbols one per step, then is fed a learned BLANK symbol, and its outputs at steps
lengths[b] .. 2*lengths[b]-1 are the logits for target positions 0 .. lengths[b]-1.

All examples share one scan of 2W steps (W = bucket width). Example b sees input[t] only while
t < lengths[b], so the state at step lengths[b]+j (j < lengths[b]) depends on its real symbols
alone; we keep every step's top output and gather step lengths[b]+j for position j. Logits at
positions >= lengths[b] are meaningless and must be masked by the loss, as for every model.
"""

import chex
import jax
import jax.numpy as jnp
from flax import linen as nn

from neural_gpu import layers
from neural_gpu.models import common


def _block_orthogonal(blocks: int):
  """(n, blocks*n) init with each n x n block orthogonal: each gate's recurrence is norm-preserving
  at the start, which keeps long read-then-emit gradients from vanishing or exploding."""
  def init(key, shape, dtype=jnp.float32):
    n = shape[0]
    keys = jax.random.split(key, blocks)
    return jnp.concatenate([jax.nn.initializers.orthogonal()(k, (n, n), dtype) for k in keys], -1)
  return init


def _block_bias(values):
  """Bias with a constant per gate block, e.g. [0, 1, 0, 0] for the LSTM forget gate."""
  def init(key, shape, dtype=jnp.float32):
    del key
    return jnp.repeat(jnp.asarray(values, dtype), shape[0] // len(values))
  return init


class _ReadThenEmit(nn.Module):
  """Shared embedding, layer stacking, scan and gather; subclasses define one cell.

  Attributes:
    vocab_size: number of symbols, PAD (0) included. Row vocab_size of the embedding is BLANK.
    hidden: state size of every layer (the embedding has this size too, so residuals fit).
    num_layers: stacked layers per time step.
    residual: each layer adds its input to its output.
    layer_norm: layer-normalize each gate block's pre-activation (Ba et al. 2016).
    dropout: rate on each layer's output (not on the recurrence), training only.
  """
  vocab_size: int
  hidden: int = 128
  num_layers: int = 1
  residual: bool = False
  layer_norm: bool = False
  dropout: float = 0.0

  # --- what a cell defines ---
  def _layer_params(self, prefix: str) -> dict:
    raise NotImplementedError

  def _initial_carry(self, batch: int, dtype):
    return jnp.zeros((batch, self.hidden), dtype)

  def _cell(self, p: dict, carry, x: jax.Array):
    """One time step of one layer: (params, carry, input) -> (carry', output)."""
    raise NotImplementedError

  # --- shared helpers ---
  def _group(self, prefix: str, blocks: int, with_input: bool = True, bias=0.0) -> dict:
    """Weights for `blocks` gate pre-activations of size hidden: h@w_rec (+ x@w_in) + b."""
    n = self.hidden
    if isinstance(bias, (list, tuple)):
      bias_init = _block_bias(bias)
    else:
      bias_init = nn.initializers.constant(bias)
    g = {"w_rec": self.param(prefix + "w_rec", _block_orthogonal(blocks), (n, blocks * n)),
         "b": self.param(prefix + "b", bias_init, (blocks * n,))}
    if with_input:
      g["w_in"] = self.param(prefix + "w_in", nn.initializers.lecun_normal(), (n, blocks * n))
    if self.layer_norm:
      g["ln"] = self.param(prefix + "ln", nn.initializers.ones, (blocks, n))
    return g

  def _pre(self, g: dict, h: jax.Array, x: jax.Array | None = None) -> jax.Array:
    pre = h @ g["w_rec"]
    if x is not None:
      pre = pre + x @ g["w_in"]
    if self.layer_norm:
      blocks = g["ln"].shape[0]
      split = pre.reshape(*pre.shape[:-1], blocks, self.hidden)
      pre = layers.layer_norm(split, g["ln"], 0.0).reshape(pre.shape)
    return pre + g["b"]

  @nn.compact
  def __call__(self, inputs: jax.Array, lengths: jax.Array, train: bool = False,
               trace: bool = False):
    """trace: also return the top layer's output at every step and its readout
    (ModelOutput.trace)."""
    batch, width = inputs.shape
    chex.assert_shape(lengths, (batch,))
    blank = self.vocab_size
    embed = self.param("embed", nn.initializers.normal(1.0), (self.vocab_size + 1, self.hidden))
    params = [self._layer_params(f"l{k}_") for k in range(self.num_layers)]
    use_dropout = train and self.dropout > 0.0
    dropout_key = self.make_rng("dropout") if use_dropout else None

    def step(carries, xs):
      t, symbol = xs
      x = embed[jnp.where(t < lengths, symbol, blank)]
      new_carries = []
      for k, (p, carry) in enumerate(zip(params, carries)):
        carry, h = self._cell(p, carry, x)
        new_carries.append(carry)
        if use_dropout:
          key = jax.random.fold_in(jax.random.fold_in(dropout_key, t), k)
          keep = jax.random.bernoulli(key, 1.0 - self.dropout, h.shape)
          h = jnp.where(keep, h / (1.0 - self.dropout), 0.0)
        x = x + h if self.residual else h
      return tuple(new_carries), x

    carries = tuple(self._initial_carry(batch, embed.dtype) for _ in range(self.num_layers))
    # Steps >= W only ever see BLANK; the `where` above also blanks t >= lengths[b].
    symbols = jnp.concatenate([inputs.T, jnp.full((width, batch), blank, inputs.dtype)])
    _, outs = jax.lax.scan(step, carries, (jnp.arange(2 * width), symbols))  # (2W, B, n)
    # Position j of example b is emitted at step lengths[b] + j; clip only affects j >= length.
    index = jnp.minimum(lengths[None, :] + jnp.arange(width)[:, None], 2 * width - 1)
    emitted = jnp.take_along_axis(outs, index[..., None], axis=0).transpose(1, 0, 2)
    readout = nn.Dense(self.vocab_size, name="readout")
    logits = readout(emitted)
    chex.assert_shape(logits, (batch, width, self.vocab_size))
    traced = {"states": outs, "logits": readout(outs)} if trace else None
    return common.ModelOutput(logits, {}, traced)


class ElmanRNN(_ReadThenEmit):
  """h' = tanh(W x + U h + b)."""

  def _layer_params(self, prefix):
    return {"h": self._group(prefix + "h_", 1)}

  def _cell(self, p, h, x):
    h = jnp.tanh(self._pre(p["h"], h, x))
    return h, h


class GRU(_ReadThenEmit):
  """Cho et al.: z, r = sigmoid(.), c = tanh(W x + U (r*h) + b), h' = (1-z)*h + z*c."""

  def _layer_params(self, prefix):
    return {"zr": self._group(prefix + "zr_", 2), "c": self._group(prefix + "c_", 1)}

  def _cell(self, p, h, x):
    z, r = jnp.split(jax.nn.sigmoid(self._pre(p["zr"], h, x)), 2, axis=-1)
    c = jnp.tanh(self._pre(p["c"], r * h, x))
    h = (1.0 - z) * h + z * c
    return h, h


class LSTM(_ReadThenEmit):
  """Gates i, f, o and candidate g from [x, h]; c' = f*c + i*g, h' = o*tanh(c').

  The forget bias starts at 1 so that memory is kept by default early in training.
  """

  def _layer_params(self, prefix):
    return {"g": self._group(prefix + "g_", 4, bias=[0.0, 1.0, 0.0, 0.0])}

  def _initial_carry(self, batch, dtype):
    zeros = jnp.zeros((batch, self.hidden), dtype)
    return zeros, zeros

  def _cell(self, p, carry, x):
    c, h = carry
    i, f, o, g = jnp.split(self._pre(p["g"], h, x), 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h


class RecurrentHighway(_ReadThenEmit):
  """Recurrent highway network (Zilly et al. 2017), coupled carry gate.

  Each time step applies `depth` micro-layers s = T*H + (1-T)*s with H = tanh(.), T = sigmoid(.);
  the input enters only the first micro-layer. T's bias starts at `gate_bias` < 0 (carry).
  """
  depth: int = 2
  gate_bias: float = -1.0

  def _layer_params(self, prefix):
    return {f"m{i}": self._group(f"{prefix}m{i}_", 2, with_input=(i == 0),
                                 bias=[0.0, self.gate_bias])
            for i in range(self.depth)}

  def _cell(self, p, s, x):
    for i in range(self.depth):
      pre = self._pre(p[f"m{i}"], s, x if i == 0 else None)
      h, t = jnp.split(pre, 2, axis=-1)
      t = jax.nn.sigmoid(t)
      s = t * jnp.tanh(h) + (1.0 - t) * s
    return s, s
