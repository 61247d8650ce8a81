"""The hand-written reverse passes (fast_scan) against plain autodiff of the same loops
(tests/oracles.py) and the lax.conv reference.

Random inputs, random per-example lengths (so the per-example freeze is exercised), relaxation
copies, dropout and remat. Logits and the gradients of every parameter must agree to 1e-5
(relative to the largest entry of each gradient).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neural_gpu import models
from neural_gpu.models import common, fast_scan
from tests import oracles

VOCAB = 5
TOL = 1e-5
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def _batch(seed, batch=4, width=11):
  rng = np.random.default_rng(seed)
  lengths = np.sort(rng.integers(1, width + 1, batch))[::-1].copy()
  lengths[0] = width
  x = rng.integers(1, VOCAB, (batch, width))
  x[np.arange(width)[None, :] >= lengths[:, None]] = 0
  targets = rng.integers(0, VOCAB, (batch, width))
  return (jnp.asarray(x, jnp.int32), jnp.asarray(lengths, jnp.int32),
          jnp.asarray(targets, jnp.int32))


def _random_params(model, x, lengths, seed, scale):
  """Random, distinct values for every parameter (relaxation copies that differ, nonzero
  biases), shaped like model.init's. Drawn flat: N-D random draws compile slowly on the CPU."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, lengths))["params"]
  leaves, tree = jax.tree.flatten(shapes)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(tree, [
      scale * jax.random.normal(k, (int(np.prod(p.shape)),), p.dtype).reshape(p.shape)
      for p, k in zip(leaves, keys)])


def _value_and_grads(model, params, x, lengths, targets, penalty_weight=0.0):
  def loss(p):
    out = model.apply({"params": p}, x, lengths, train=True,
                      rngs={"dropout": jax.random.key(7)})
    real = (jnp.arange(x.shape[1])[None, :] < lengths[:, None])[..., None]
    xent = -jnp.sum(jax.nn.log_softmax(out.logits) * jax.nn.one_hot(targets, VOCAB) * real)
    total = xent + penalty_weight * sum(out.penalties.values())
    return total, out.logits

  # LLVM optimization off: a third of the compile time, and these graphs are tiny.
  grad_fn = jax.jit(jax.value_and_grad(loss, has_aux=True), compiler_options=FAST_COMPILE)
  (_, logits), grads = grad_fn(params)
  return logits, grads


def _autodiff_value_and_grads(*args, **kwargs):
  """`_value_and_grads` with the model's loop differentiated by plain autodiff (the oracle)."""
  with oracles.autodiff_loops():
    return _value_and_grads(*args, **kwargs)


def _assert_close(a, b, what):
  logits_a, grads_a = a
  logits_b, grads_b = b
  np.testing.assert_allclose(logits_a, logits_b, atol=TOL, rtol=TOL, err_msg=f"{what}: logits")
  assert set(grads_a) == set(grads_b)
  for name in grads_a:
    scale = float(jnp.max(jnp.abs(grads_b[name])))
    np.testing.assert_allclose(grads_a[name], grads_b[name], atol=TOL * max(scale, 1e-3),
                               rtol=TOL, err_msg=f"{what}: gradient of {name}")


def test_ngpu_fast_scan_matches_autodiff_and_lax_conv():
  """Two layers, two relaxation copies, dropout: the custom VJP (with and without remat) against
  autodiff of the same loop and against the lax.conv formulation."""
  x, lengths, targets = _batch(0)
  common_params = dict(nmaps=4, relax_copies=2, dropout=0.2)
  fast = models.get("neural_gpu", VOCAB, conv_impl="matmul", **common_params)
  p = _random_params(fast, x, lengths, seed=0, scale=0.5)
  got = _value_and_grads(fast, p, x, lengths, targets)
  want = _autodiff_value_and_grads(fast, p, x, lengths, targets)
  _assert_close(got, want, "custom VJP vs autodiff")
  conv = models.get("neural_gpu", VOCAB, conv_impl="conv", **common_params)
  _assert_close(got, _value_and_grads(conv, p, x, lengths, targets), "custom VJP vs lax.conv")
  remat = models.get("neural_gpu", VOCAB, conv_impl="matmul", remat=True, **common_params)
  _assert_close(_value_and_grads(remat, p, x, lengths, targets), want, "remat vs autodiff")


def test_ngpu_fast_scan_without_dropout():
  x, lengths, targets = _batch(1)
  fast = models.get("neural_gpu", VOCAB, nmaps=4, height=3, conv_impl="matmul")
  p = _random_params(fast, x, lengths, seed=1, scale=0.5)
  _assert_close(_value_and_grads(fast, p, x, lengths, targets),
                _autodiff_value_and_grads(fast, p, x, lengths, targets), "custom VJP vs autodiff")


@pytest.mark.parametrize("extra_steps,zoneout", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.3)])
def test_dngpu_fast_scan_matches_autodiff(extra_steps, zoneout):
  """Dropout on, and a large saturation-cost weight so that term's gradient is checked too;
  with extra_steps the examples also run random numbers of steps past their lengths; with
  zoneout units also keep their shifted state at random."""
  x, lengths, targets = _batch(2, width=12)
  fast = models.get("dngpu", VOCAB, nmaps=9, dropout=0.2, extra_steps=extra_steps,
                    zoneout=zoneout)
  p = _random_params(fast, x, lengths, seed=2, scale=0.6)
  got = _value_and_grads(fast, p, x, lengths, targets, penalty_weight=3.0)
  want = _autodiff_value_and_grads(fast, p, x, lengths, targets, penalty_weight=3.0)
  _assert_close(got, want, "custom VJP vs autodiff")


@pytest.mark.parametrize("name,params", [("neural_gpu", dict(nmaps=4)), ("dngpu", dict(nmaps=6))])
def test_chunked_evaluation_forward_is_the_same_function(name, params, monkeypatch):
  """Without gradients the batch runs in cache-sized chunks; forced tiny here."""
  x, lengths, _ = _batch(3, batch=6, width=9)
  model = models.get(name, VOCAB, **params)
  p = _random_params(model, x, lengths, seed=3, scale=0.5)
  apply = lambda: jax.jit(lambda p: model.apply({"params": p}, x, lengths),
                          compiler_options=FAST_COMPILE)(p)
  whole = apply()
  monkeypatch.setattr(fast_scan, "CHUNK_BYTES", 1)  # one example per chunk
  assert fast_scan.batch_chunk(6, 9, 12) == 1
  chunked = apply()
  # Chunks change the matmul shapes, hence XLA's blocking and float summation order: up to
  # ~2e-6 apart on an AVX-512 host.
  np.testing.assert_allclose(chunked.logits, whole.logits, atol=1e-5)
  for key in whole.penalties:
    np.testing.assert_allclose(chunked.penalties[key], whole.penalties[key], rtol=1e-5)


def test_transpose_taps_is_the_gradient_of_a_width3_conv():
  x, dy = np.random.default_rng(0).normal(size=(2, 2, 7, 4)).astype(np.float32)
  w = np.random.default_rng(1).normal(size=(12, 4)).astype(np.float32)

  @jax.jit
  def both(x, w, dy):
    _, vjp = jax.vjp(lambda x: common.width3_taps(x) @ w, x)
    return common.width3_taps(dy) @ fast_scan.transpose_taps(w), vjp(dy)[0]

  got, want = both(x, w, dy)
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_diagonal_shift_inverse_is_its_transpose():
  s, g = np.random.default_rng(0).normal(size=(2, 2, 6, 7)).astype(np.float32)

  @jax.jit
  def both(s, g):
    _, vjp = jax.vjp(fast_scan.diagonal_shift, s)
    return fast_scan.diagonal_shift(g, inverse=True), vjp(g)[0]

  got, want = both(s, g)
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_remat_keeps_less_for_the_backward_pass():
  """The remat forward saves one state per step instead of four tensors per layer."""
  spec = fast_scan.ScanSpec(num_layers=2, relax_copies=1, cutoff=1.2, dropout=False,
                            remat=False)
  c = 8
  w = fast_scan.Weights(jnp.zeros((1, 2, 3 * c, 2 * c)), jnp.zeros((1, 2, 2 * c)),
                        jnp.zeros((1, 2, 3 * c, c)), jnp.zeros((1, 2, c)))
  state = jnp.zeros((2, 5, c))
  lengths = jnp.array([5, 3])

  def saved_floats(spec):
    _, res = jax.eval_shape(lambda: fast_scan._fwd(spec, w, state, lengths, 1.0, None))
    return sum(x.size for x in jax.tree.leaves(res[1]))

  assert saved_floats(spec._replace(remat=True)) * 4 < saved_floats(spec)
