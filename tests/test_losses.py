"""Tests for neural_gpu.losses against hand computations."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neural_gpu import losses


def log_softmax(row):
  top = max(row)
  log_z = top + math.log(sum(math.exp(v - top) for v in row))
  return [v - log_z for v in row]


def test_softmax_cross_entropy_by_hand():
  logits = jnp.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
  labels = jnp.array([2, 0])
  per_row = [-log_softmax([1.0, 2.0, 3.0])[2], -log_softmax([0.5, -1.0, 0.0])[0]]
  ce = losses.get("softmax_cross_entropy")
  np.testing.assert_allclose(ce(logits, labels), sum(per_row) / 2, rtol=1e-6)
  # Weights select positions: the mean is over weighted positions only.
  np.testing.assert_allclose(ce(logits, labels, jnp.array([1.0, 0.0])), per_row[0], rtol=1e-6)
  np.testing.assert_allclose(ce(logits, labels, jnp.array([1.0, 3.0])),
                             (per_row[0] + 3 * per_row[1]) / 4, rtol=1e-6)
  assert float(ce(logits, labels, jnp.zeros(2))) == 0.0


def test_softmax_cross_entropy_label_smoothing_by_hand():
  logits = jnp.array([[1.0, 2.0, 3.0]])
  q = [0.1 / 3, 0.1 / 3, 0.9 + 0.1 / 3]
  expected = -sum(qi * li for qi, li in zip(q, log_softmax([1.0, 2.0, 3.0])))
  got = losses.softmax_cross_entropy(logits, jnp.array([2]), label_smoothing=0.1)
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  with pytest.raises(ValueError, match="label_smoothing"):
    losses.softmax_cross_entropy(logits, jnp.array([2]), label_smoothing=1.0)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
  logits = jnp.array([[1000.0, 0.0], [-1000.0, 1000.0]])
  labels = jnp.array([1, 1])
  value, grad = jax.value_and_grad(losses.softmax_cross_entropy)(logits, labels)
  np.testing.assert_allclose(value, 500.0, rtol=1e-6)  # (1000 + 0) / 2
  assert np.all(np.isfinite(grad))


def test_softmax_cross_entropy_on_sequences_with_a_mask():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 5, 4)).astype(np.float32)
  labels = rng.integers(0, 4, (2, 5))
  mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.float32)
  per_pos = [-log_softmax(logits[b, i].tolist())[labels[b, i]] for b in range(2) for i in range(5)]
  expected = np.sum(np.array(per_pos) * mask.reshape(-1)) / 8
  got = losses.softmax_cross_entropy(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(mask))
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_sigmoid_cross_entropy_by_hand():
  logits = jnp.array([[2.0], [-1.0], [0.0]])
  targets = jnp.array([[1.0], [0.0], [1.0]])
  expected = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0)) + math.log(2.0)) / 3
  np.testing.assert_allclose(losses.get("sigmoid_cross_entropy")(logits, targets), expected,
                             rtol=1e-6)
  # Int labels become one-hot; the loss averages over the classes.
  row = [0.5, -0.5, 1.5]
  sp = lambda v: math.log1p(math.exp(v))  # softplus(v) = -log sigmoid(-v)
  expected = (sp(-0.5) + sp(-0.5) + sp(1.5)) / 3  # z=1: sp(-x); z=0: sp(x)
  np.testing.assert_allclose(losses.sigmoid_cross_entropy(jnp.array([row]), jnp.array([0])),
                             expected, rtol=1e-6)
  huge = losses.sigmoid_cross_entropy(jnp.array([[1000.0], [-1000.0]]), jnp.array([[0.0], [1.0]]))
  np.testing.assert_allclose(huge, 1000.0, rtol=1e-6)


def test_mean_squared_error_by_hand():
  mse = losses.get("mean_squared_error")
  np.testing.assert_allclose(mse(jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 4.0]])), 2.5)
  expected = ((0.5 - 1.0) ** 2 + 0.2 ** 2 + 0.1 ** 2) / 3
  np.testing.assert_allclose(mse(jnp.array([[0.5, 0.2, 0.1]]), jnp.array([0])), expected,
                             rtol=1e-6)
  two = jnp.array([[1.0, 1.0], [3.0, 3.0]])
  np.testing.assert_allclose(mse(two, jnp.zeros((2, 2)), jnp.array([0.0, 1.0])), 9.0)


def test_kl_divergence_by_hand():
  kl = losses.get("kl_divergence")
  p = [0.25, 0.75]
  logits = [0.3, -0.2]
  expected = sum(pi * (math.log(pi) - li) for pi, li in zip(p, log_softmax(logits)))
  np.testing.assert_allclose(kl(jnp.array([logits]), jnp.array([p])), expected, rtol=1e-6)
  # Zero at a perfect fit; with one-hot targets it equals cross-entropy (0 log 0 = 0).
  np.testing.assert_allclose(kl(jnp.log(jnp.array([p])), jnp.array([p])), 0.0, atol=1e-7)
  logits = jnp.array([[1.0, 2.0, 3.0]])
  np.testing.assert_allclose(kl(logits, jnp.array([1])),
                             losses.softmax_cross_entropy(logits, jnp.array([1])), rtol=1e-6)


def test_bad_targets_raise():
  with pytest.raises(ValueError, match="integer class labels"):
    losses.softmax_cross_entropy(jnp.zeros((2, 3)), jnp.zeros((2,)))
  with pytest.raises(ValueError, match="fits neither"):
    losses.mean_squared_error(jnp.zeros((2, 3)), jnp.zeros((2, 4)))


def test_registry():
  assert losses.names() == ["kl_divergence", "mean_squared_error", "sigmoid_cross_entropy",
                            "softmax_cross_entropy"]
  with pytest.raises(ValueError, match="valid losses: kl_divergence, mean_squared_error, "
                                       "sigmoid_cross_entropy, softmax_cross_entropy"):
    losses.get("hinge")
