"""Shared set-up and checks for the baseline models' tests (test helpers, not product code).

tests/test_mlp.py (the fixed-size models, neural_gpu/models/mlp.py) and tests/test_recurrent.py
(the recurrent models, neural_gpu/models/recurrent.py) run the `check_*` functions below, each
over its own half of the models, on the same tiny instances and the same binary copy task.
tests/conftest.py registers this module for pytest's assertion rewriting.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.test_util import check_grads

from neural_gpu import losses, models

VOCAB = 3  # PAD plus a binary alphabet {1, 2}
WIDTH = 6
RECURRENT = ["rnn", "gru", "lstm", "highway"]
FIXED = ["mlp", "highway_mlp"]
# Tiny instances with the structural options (stacking, residual, layer norm) switched on.
TINY = {
    "mlp": dict(fixed_length=WIDTH, depth=2, width=8, activation="tanh", norm="layer"),
    "highway_mlp": dict(fixed_length=WIDTH, depth=2, width=8, activation="gelu"),
    "rnn": dict(hidden=6, num_layers=2, residual=True),
    "gru": dict(hidden=6, num_layers=2, layer_norm=True),
    "lstm": dict(hidden=6, num_layers=2, residual=True, layer_norm=True),
    "highway": dict(hidden=6, depth=3, layer_norm=True),
}
# Configurations that learn the copy task below in a few hundred steps.
LEARN = {
    "mlp": dict(fixed_length=WIDTH, depth=2, width=64),
    "highway_mlp": dict(fixed_length=WIDTH, depth=2, width=32),
    "rnn": dict(hidden=32),
    "gru": dict(hidden=32),
    "lstm": dict(hidden=32),
    "highway": dict(hidden=32),
}


def copy_batch(rng, batch, width=WIDTH, low=4):
  """Binary copy examples with true lengths in [low, width]; PAD beyond the length."""
  lengths = rng.integers(low, width + 1, batch)
  x = np.where(np.arange(width) < lengths[:, None], rng.integers(1, VOCAB, (batch, width)), 0)
  return jnp.asarray(x, jnp.int32), jnp.asarray(lengths, jnp.int32)


def real_positions(lengths, width):
  return (jnp.arange(width)[None, :] < lengths[:, None]).astype(jnp.float32)


def jit_apply(model):
  return jax.jit(model.apply, static_argnames="train")


@functools.cache
def tiny(name):
  """TINY[name] as (model, variables, jitted apply), built once and shared by the tests:
  compilation, not arithmetic, is what these tests spend their time on."""
  model = models.get(name, VOCAB, **TINY[name])
  variables = model.init(jax.random.key(0), *copy_batch(np.random.default_rng(0), 6, low=1))
  return model, variables, jit_apply(model)


def check_output_shape(name):
  """Float32 logits (batch, width, vocab), all finite, and no penalties."""
  _, variables, apply = tiny(name)
  x, lengths = copy_batch(np.random.default_rng(1), 6, low=1)
  out = apply(variables, x, lengths)
  assert out.logits.shape == (6, WIDTH, VOCAB)
  assert out.logits.dtype == jnp.float32
  assert out.penalties == {}
  assert np.all(np.isfinite(out.logits))


def check_gradients_match_finite_differences(model, variables):
  """Reverse-mode gradients of the copy loss (train mode, float64) match finite differences."""
  x, lengths = copy_batch(np.random.default_rng(3), 4, low=2)
  weights = real_positions(lengths, WIDTH)
  with jax.enable_x64(True):
    as64 = lambda tree: jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), tree)
    variables = as64(variables)

    @jax.jit
    def loss(p):
      out, _ = model.apply({**variables, "params": p}, x, lengths, train=True,
                           mutable=["batch_stats"])
      return losses.softmax_cross_entropy(out.logits, x, weights)

    base = loss(variables["params"])
    assert base.dtype == jnp.float64
    # The loss really depends on the parameters, so matching finite differences means something.
    nudged = jax.tree_util.tree_map(lambda a: a + 1e-3, variables["params"])
    assert abs(float(loss(nudged) - base)) > 1e-6
    check_grads(loss, (variables["params"],), order=1, modes=["rev"], atol=1e-6, rtol=1e-5,
                eps=1e-6)


def check_dropout_only_in_training(name):
  """Dropout changes training passes (differently per key) and leaves evaluation alone."""
  model = models.get(name, VOCAB, **{**TINY[name], "dropout": 0.5})
  _, variables, _ = tiny(name)  # dropout adds no parameters
  x, lengths = copy_batch(np.random.default_rng(5), 6)
  apply = jit_apply(model)
  evaluate = apply(variables, x, lengths, train=False).logits
  np.testing.assert_array_equal(evaluate, apply(variables, x, lengths).logits)
  trained = [apply(variables, x, lengths, train=True, rngs={"dropout": jax.random.key(k)})
             .logits for k in (1, 2)]
  assert not np.allclose(trained[0], evaluate)
  assert not np.allclose(trained[0], trained[1])


def _train(model, params, data, lr):
  """Adam on the copy task (target = input), the whole loop one jitted scan over `data`.

  data: (inputs (steps, batch, W), lengths (steps, batch)).
  """
  opt = optax.adam(lr)

  def step(carry, batch):
    params, opt_state = carry
    x, lengths = batch

    def objective(p):
      logits = model.apply({"params": p}, x, lengths).logits
      return losses.softmax_cross_entropy(logits, x, real_positions(lengths, x.shape[1]))

    updates, opt_state = opt.update(jax.grad(objective)(params), opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), None

  run = jax.jit(lambda p, d: jax.lax.scan(step, (p, opt.init(p)), d)[0][0])
  return run(params, data)


def check_learns_binary_copy(name, steps):
  """LEARN[name] trained `steps` Adam steps (batch 64, lr 1e-2) copies held-out examples with
  at least 95% per-symbol accuracy on the real positions."""
  model = models.get(name, VOCAB, **LEARN[name])
  rng = np.random.default_rng(0)
  params = model.init(jax.random.key(0), *copy_batch(rng, 2))["params"]
  x, lengths = copy_batch(rng, 64 * steps)
  params = _train(model, params, (x.reshape(steps, 64, WIDTH), lengths.reshape(steps, 64)), 1e-2)
  x, lengths = copy_batch(np.random.default_rng(99), 512)
  predicted = jit_apply(model)({"params": params}, x, lengths).logits.argmax(-1)
  real = real_positions(lengths, WIDTH)
  accuracy = float(jnp.sum((predicted == x) * real) / jnp.sum(real))
  assert accuracy >= 0.95, accuracy
