"""Feed-forward baselines for fixed-size problems: a plain MLP and a highway MLP.

Both flatten the one-hot input of exactly `fixed_length` positions into one vector and predict
all `fixed_length` x vocab logits at once. They have one weight per (position, symbol), so they
cannot run at any other length: that is the point of the baseline (no length generalization by
construction), and calling them at another length raises a ValueError saying so.

Batch norm ('norm': 'batch') keeps running statistics in the 'batch_stats' collection. The
trainer must then apply with train=True as
  out, updates = model.apply(variables, x, lengths, train=True, rngs=..., mutable=['batch_stats'])
and store variables = {**variables, **updates} (see `neural_gpu.layers.apply_train`); evaluation
uses train=False and no mutable collection. Only variables['params'] is differentiated.
"""

import chex
import jax
import jax.numpy as jnp
from flax import linen as nn

from neural_gpu import layers
from neural_gpu.models import common


def _check_names(module) -> None:
  layers.activation(module.activation)
  layers.initializer(module.weight_init)
  layers.check_norm(module.norm)


class DenseStack(nn.Module):
  """`depth` hidden layers Dense -> norm -> activation -> dropout, then an optional linear output.

  Works on any (batch, features) array, e.g. the two raw inputs of XOR.
  """
  depth: int = 2
  width: int = 256
  activation: str = "relu"
  dropout: float = 0.0
  norm: str = "none"
  weight_init: str = "lecun_normal"
  out_features: int | None = None

  def __post_init__(self):
    _check_names(self)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    act = layers.activation(self.activation)
    kernel_init = layers.initializer(self.weight_init)
    for _ in range(self.depth):
      x = nn.Dense(self.width, kernel_init=kernel_init)(x)
      x = act(layers.Norm(self.norm)(x, train))
      x = nn.Dropout(self.dropout)(x, deterministic=not train)
    if self.out_features is not None:
      x = nn.Dense(self.out_features, kernel_init=kernel_init)(x)
    return x


class HighwayStack(nn.Module):
  """Linear map to `width`, then `depth` highway layers y = T*H(x) + (1-T)*x, then a linear output.

  H(x) = act(norm(W_H x + b_H)), T(x) = sigmoid(W_T x + b_T). b_T starts at `gate_bias` < 0 so
  every layer starts close to the identity and deep stacks still pass gradients.
  """
  depth: int = 4
  width: int = 128
  activation: str = "relu"
  dropout: float = 0.0
  norm: str = "none"
  weight_init: str = "lecun_normal"
  gate_bias: float = -1.0
  out_features: int | None = None

  def __post_init__(self):
    _check_names(self)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    act = layers.activation(self.activation)
    kernel_init = layers.initializer(self.weight_init)
    x = nn.Dense(self.width, kernel_init=kernel_init)(x)
    for _ in range(self.depth):
      h = act(layers.Norm(self.norm)(nn.Dense(self.width, kernel_init=kernel_init)(x), train))
      h = nn.Dropout(self.dropout)(h, deterministic=not train)
      t = jax.nn.sigmoid(nn.Dense(self.width, kernel_init=kernel_init,
                                  bias_init=nn.initializers.constant(self.gate_bias))(x))
      x = t * h + (1.0 - t) * x
    if self.out_features is not None:
      x = nn.Dense(self.out_features, kernel_init=kernel_init)(x)
    return x


def flat_one_hot(model_name: str, fixed_length: int, vocab_size: int,
                 inputs: jax.Array, lengths: jax.Array) -> jax.Array:
  """(batch, L) symbols -> (batch, L*vocab) one-hot, zero at positions >= length.

  Zeroing the bucket padding makes results independent of whatever it holds.
  """
  batch, width = inputs.shape
  if width != fixed_length:
    raise common.NotApplicable(
        f"{model_name} is built for length {fixed_length}; it cannot run at length {width}")
  chex.assert_shape(lengths, (batch,))
  x = jax.nn.one_hot(inputs, vocab_size) * common.length_mask(lengths, width)
  return x.reshape(batch, width * vocab_size)


class MLP(nn.Module):
  """Plain MLP over the whole flattened sequence.

  Attributes:
    vocab_size: number of symbols, PAD (0) included.
    fixed_length: the (padded) input length it is built for; other lengths raise ValueError.
    depth, width: number and size of hidden layers.
    activation: sigmoid | tanh | relu | leaky_relu | elu | gelu.
    dropout: rate after each hidden activation, training only.
    norm: none | batch | layer, before each hidden activation.
    weight_init: lecun|glorot|he _normal|_uniform kernel init (not `init`: that is
      flax's Module.init).
  """
  vocab_size: int
  fixed_length: int
  depth: int = 2
  width: int = 256
  activation: str = "relu"
  dropout: float = 0.0
  norm: str = "none"
  weight_init: str = "lecun_normal"

  def __post_init__(self):
    _check_names(self)
    super().__post_init__()

  @nn.compact
  def __call__(self, inputs: jax.Array, lengths: jax.Array, train: bool = False):
    x = flat_one_hot("mlp", self.fixed_length, self.vocab_size, inputs, lengths)
    out = DenseStack(self.depth, self.width, self.activation, self.dropout, self.norm,
                     self.weight_init, out_features=self.fixed_length * self.vocab_size)(x, train)
    logits = out.reshape(inputs.shape[0], self.fixed_length, self.vocab_size)
    return common.ModelOutput(logits, {})


class HighwayMLP(nn.Module):
  """Highway network over the whole flattened sequence; attributes as `MLP` plus `gate_bias`."""
  vocab_size: int
  fixed_length: int
  depth: int = 4
  width: int = 128
  activation: str = "relu"
  dropout: float = 0.0
  norm: str = "none"
  weight_init: str = "lecun_normal"
  gate_bias: float = -1.0

  def __post_init__(self):
    _check_names(self)
    super().__post_init__()

  @nn.compact
  def __call__(self, inputs: jax.Array, lengths: jax.Array, train: bool = False):
    x = flat_one_hot("highway_mlp", self.fixed_length, self.vocab_size, inputs, lengths)
    out = HighwayStack(self.depth, self.width, self.activation, self.dropout, self.norm,
                       self.weight_init, self.gate_bias,
                       out_features=self.fixed_length * self.vocab_size)(x, train)
    logits = out.reshape(inputs.shape[0], self.fixed_length, self.vocab_size)
    return common.ModelOutput(logits, {})
