"""Tests for neural_gpu.layers: activations, initializers and normalization against hand values."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neural_gpu import layers

POINTS = [-2.0, -0.5, 0.0, 0.5, 2.0]
EXPECTED = {
    "sigmoid": lambda x: 1.0 / (1.0 + math.exp(-x)),
    "tanh": math.tanh,
    "relu": lambda x: max(x, 0.0),
    "leaky_relu": lambda x: x if x > 0 else 0.01 * x,
    "elu": lambda x: x if x > 0 else math.exp(x) - 1.0,
    "gelu": lambda x: 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0))),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_activation_values(name):
  got = layers.activation(name)(jnp.array(POINTS))
  np.testing.assert_allclose(got, [EXPECTED[name](x) for x in POINTS], rtol=1e-6, atol=1e-7)


def test_activation_registry_is_complete_and_rejects_unknown():
  assert sorted(layers.ACTIVATIONS) == sorted(EXPECTED)
  with pytest.raises(ValueError, match="valid: elu, gelu, leaky_relu, relu, sigmoid, tanh"):
    layers.activation("swish")


FAN_IN, FAN_OUT = 400, 300
VARIANCE = {"lecun": 1.0 / FAN_IN, "glorot": 2.0 / (FAN_IN + FAN_OUT), "he": 2.0 / FAN_IN}


@pytest.mark.parametrize("family", sorted(VARIANCE))
@pytest.mark.parametrize("dist", ["normal", "uniform"])
def test_initializer_variance_and_shape(family, dist):
  w = np.asarray(layers.initializer(f"{family}_{dist}")(jax.random.key(0), (FAN_IN, FAN_OUT)))
  assert w.shape == (FAN_IN, FAN_OUT)
  std = math.sqrt(VARIANCE[family])
  assert abs(w.mean()) < 0.02 * std
  assert abs(w.std() / std - 1.0) < 0.02
  top = np.abs(w).max() / std
  if dist == "uniform":
    # U(-a, a) with a = sqrt(3) * std: never beyond a, and close to it with 120k draws.
    assert math.sqrt(3) * 0.999 < top <= math.sqrt(3) * (1 + 1e-6)
  else:
    # A normal truncated at 2 of its own std, rescaled to std: reaches 2/0.8796 = 2.27 std.
    assert 2.1 < top <= 2.28


def test_initializer_rejects_unknown():
  with pytest.raises(ValueError, match="glorot_normal, glorot_uniform, he_normal, he_uniform, "
                                       "lecun_normal, lecun_uniform"):
    layers.initializer("xavier")


def test_functional_layer_norm_by_hand():
  x = jnp.array([[1.0, 2.0, 3.0, 4.0]])
  expected = (np.array([1.0, 2.0, 3.0, 4.0]) - 2.5) / math.sqrt(1.25 + 1e-5)
  np.testing.assert_allclose(layers.layer_norm(x, 1.0, 0.0)[0], expected, rtol=1e-6)
  np.testing.assert_allclose(layers.layer_norm(x, 2.0, 1.0)[0], 2 * expected + 1, rtol=1e-6)


def test_norm_module_layer_and_none():
  x = jax.random.normal(jax.random.key(0), (5, 8)) * 3.0 + 1.0
  ln = layers.Norm("layer")
  y = ln.apply(ln.init(jax.random.key(1), x, False), x, False)
  np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-5)
  np.testing.assert_allclose(y.var(-1), 1.0, rtol=1e-3)
  none = layers.Norm("none")
  assert none.init(jax.random.key(1), x, False) == {}
  np.testing.assert_array_equal(none.apply({}, x, False), x)


def test_norm_module_batch_statistics():
  x = jax.random.normal(jax.random.key(0), (64, 3)) * 2.0 + 5.0
  bn = layers.Norm("batch", momentum=0.9)
  variables = bn.init(jax.random.key(1), x, False)
  y, updates = bn.apply(variables, x, True, mutable=["batch_stats"])
  np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-5)  # train: the batch's own statistics
  running_mean = jax.tree_util.tree_leaves(updates["batch_stats"])[0]
  np.testing.assert_allclose(running_mean, 0.1 * x.mean(0), rtol=1e-5)  # 0.9 * 0 + 0.1 * mean
  # Eval: the (initial) running statistics mean 0, var 1 leave x nearly unchanged.
  np.testing.assert_allclose(bn.apply(variables, x, False), x / math.sqrt(1 + 1e-5), rtol=1e-5)


def test_norm_rejects_unknown():
  with pytest.raises(ValueError, match="valid: batch, layer, none"):
    layers.check_norm("group")
