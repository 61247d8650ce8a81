"""The models package (neural_gpu/models): the Neural GPU models (shapes, bucket invariance,
reference formulation, gradients) and the registry (unknown names and parameters list the valid
ones). The baselines have their own files: tests/test_mlp.py, tests/test_recurrent.py."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from neural_gpu import models
from neural_gpu.models import ngpu


def _batch(rng, vocab, batch, width, lengths):
  x = rng.integers(1, vocab, (batch, width))
  x[np.arange(width)[None, :] >= np.asarray(lengths)[:, None]] = 0
  return jnp.asarray(x, jnp.int32), jnp.asarray(lengths, jnp.int32)


@pytest.mark.parametrize("name,params", [("neural_gpu", dict(nmaps=6)), ("dngpu", dict(nmaps=9))])
def test_same_example_same_logits_in_every_bucket(name, params):
  model = models.get(name, 4, **params)
  x, lens = _batch(np.random.default_rng(0), 4, 3, 7, [7, 5, 2])
  variables = model.init(jax.random.key(0), x, lens)
  base = model.apply(variables, x, lens).logits
  assert base.shape == (3, 7, 4)
  for width in (8, 12, 16):
    wide = jnp.pad(x, ((0, 0), (0, width - 7)))
    out = model.apply(variables, wide, lens).logits
    np.testing.assert_allclose(out[:, :7], base, atol=1e-6)


def test_example_result_does_not_depend_on_its_batch_neighbours():
  model = models.get("neural_gpu", 4, nmaps=6)
  x, lens = _batch(np.random.default_rng(1), 4, 2, 8, [8, 3])
  variables = model.init(jax.random.key(0), x, lens)
  both = model.apply(variables, x, lens).logits
  alone = model.apply(variables, x[1:], lens[1:]).logits
  np.testing.assert_allclose(both[1:], alone, atol=1e-6)


def test_banded_matmul_equals_lax_convolution():
  rng = np.random.default_rng(2)
  fast = models.get("neural_gpu", 5, nmaps=8, relax_copies=3)
  slow = models.get("neural_gpu", 5, nmaps=8, relax_copies=3, conv_impl="conv")
  x, lens = _batch(rng, 5, 4, 10, [10, 9, 4, 1])
  variables = fast.init(jax.random.key(3), x, lens)
  np.testing.assert_allclose(fast.apply(variables, x, lens).logits,
                             slow.apply(variables, x, lens).logits, atol=1e-5)


def test_fold_kernel_is_a_3x3_same_convolution():
  kernel = jax.random.normal(jax.random.key(0), (3, 3, 2, 2))
  state = jax.random.normal(jax.random.key(1), (2, 6, 4 * 2))
  from neural_gpu.models import common
  np.testing.assert_allclose(common.width3_taps(state) @ ngpu.fold_kernel(kernel, 4),
                             ngpu.conv3x3(state, kernel, 4), atol=1e-5)


@pytest.mark.parametrize("name,params", [("neural_gpu", dict(nmaps=3, num_layers=1, height=2)),
                                         ("dngpu", dict(nmaps=3))])
def test_gradients_match_finite_differences(name, params):
  model = models.get(name, 3, **params)
  x, lens = _batch(np.random.default_rng(4), 3, 2, 4, [4, 3])
  targets = jnp.asarray(np.random.default_rng(5).integers(0, 3, (2, 4)), jnp.int32)
  variables = model.init(jax.random.key(0), x, lens)
  with jax.enable_x64(True):
    params64 = jax.tree.map(lambda p: p.astype(jnp.float64), variables["params"])

    @jax.jit
    def loss(p):
      logits = model.apply({"params": p}, x, lens).logits
      return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], -1))

    check_grads(loss, (params64,), order=1, modes=["rev"], atol=1e-4, rtol=1e-3)


def test_dropout_only_in_training():
  model = models.get("neural_gpu", 4, nmaps=6, dropout=0.3)
  x, lens = _batch(np.random.default_rng(6), 4, 2, 8, [8, 8])
  variables = model.init(jax.random.key(0), x, lens)
  a = model.apply(variables, x, lens).logits
  b = model.apply(variables, x, lens).logits
  np.testing.assert_array_equal(a, b)
  c = model.apply(variables, x, lens, train=True, rngs={"dropout": jax.random.key(1)}).logits
  assert not np.allclose(a, c)


@pytest.mark.parametrize("option", [dict(input_dropout=0.5), dict(extra_steps=1.0)])
def test_dngpu_training_only_options(option):
  """Input dropout and random extra steps change what a training pass computes, never an
  evaluation (and without them, training and evaluation agree when dropout is off)."""
  x, lens = _batch(np.random.default_rng(8), 4, 3, 8, [8, 6, 8])
  plain = models.get("dngpu", 4, nmaps=6)
  changed = models.get("dngpu", 4, nmaps=6, **option)
  variables = plain.init(jax.random.key(0), x, lens)
  evaluated = plain.apply(variables, x, lens).logits
  np.testing.assert_array_equal(evaluated, changed.apply(variables, x, lens).logits)
  rngs = {"dropout": jax.random.key(1)}
  np.testing.assert_array_equal(plain.apply(variables, x, lens, train=True, rngs=rngs).logits,
                                evaluated)
  assert not np.allclose(changed.apply(variables, x, lens, train=True, rngs=rngs).logits,
                         evaluated)


def _dngpu_alone(params, x, steps, take=1.0):
  """Oracle: one example (width = its length), `steps` DNGPU steps written out in a loop; each
  unit takes the candidate with weight `take` and keeps its shifted state with 1 - take."""
  from neural_gpu.models import common, dngpu
  p = params["params"]
  m = p["cand_bias"].shape[0]
  state = common.hard_tanh(p["input_proj"][x])[None]
  for _ in range(steps):
    gates = common.hard_sigmoid(common.width3_taps(state) @ p["gate_kernel"] + p["gate_bias"]
                                + jnp.concatenate([jnp.full(m, 0.5), jnp.full(m, 0.7)]))
    reset, update = gates[..., :m], gates[..., m:]
    cand = common.hard_tanh(common.width3_taps(reset * state) @ p["cand_kernel"] + p["cand_bias"])
    cand = take * cand + (1 - take) * dngpu.diagonal_shift(state)
    state = update * dngpu.diagonal_shift(state) + (1 - update) * cand
  return (state @ p["output"] + p["output_bias"])[0]


def test_dngpu_zoneout_evaluates_its_expectation_and_samples_in_training():
  """Zoneout 0.25: the deterministic pass takes each candidate with weight 0.75 and keeps the
  shifted state with 0.25 (the expectation of the training draws); training draws differ."""
  x, lens = _batch(np.random.default_rng(10), 4, 1, 9, [9])
  model = models.get("dngpu", 4, nmaps=6, dropout=0.0, zoneout=0.25)
  variables = model.init(jax.random.key(4), x, lens)
  evaluated = model.apply(variables, x, lens).logits[0]
  np.testing.assert_allclose(evaluated, _dngpu_alone(variables, x[0], 9, take=0.75), atol=1e-5)
  assert not np.allclose(evaluated, _dngpu_alone(variables, x[0], 9), atol=1e-3)
  rngs = {"dropout": jax.random.key(1)}
  trained = model.apply(variables, x, lens, train=True, rngs=rngs).logits[0]
  assert not np.allclose(trained, evaluated, atol=1e-3)
  sampled = model.apply(variables, x, lens, mc_dropout=True, rngs=rngs).logits[0]
  np.testing.assert_allclose(sampled, trained, atol=1e-5)  # same draws: MC samples zoneout


def test_dngpu_bin_steps_runs_a_padded_example_for_the_bin_width():
  """The reference protocol: an example padded into a wider bin gives exactly the logits of
  that example run alone for the bin's width in steps (the zero cells beyond it act as the
  convolution's zero padding), and not those of its own length."""
  x, lens = _batch(np.random.default_rng(9), 4, 2, 12, [7, 12])
  model = models.get("dngpu", 4, nmaps=6, dropout=0.0, bin_steps=True)
  variables = model.init(jax.random.key(3), x, lens)
  rngs = {"dropout": jax.random.key(1)}
  padded = model.apply(variables, x, lens, train=True, rngs=rngs).logits
  alone = _dngpu_alone(variables, x[0, :7], steps=12)
  np.testing.assert_allclose(padded[0, :7], alone, atol=1e-5)
  own = _dngpu_alone(variables, x[0, :7], steps=7)
  np.testing.assert_allclose(model.apply(variables, x, lens).logits[0, :7], own, atol=1e-5)
  assert not np.allclose(alone, own, atol=1e-3)


def test_dngpu_reports_saturation_cost():
  model = models.get("dngpu", 4, nmaps=6)
  x, lens = _batch(np.random.default_rng(7), 4, 2, 8, [8, 5])
  variables = model.init(jax.random.key(0), x, lens)
  out = model.apply(variables, x, lens)
  assert float(out.penalties["saturation"]) >= 0.0
  big = jax.tree.map(lambda p: p * 10, variables)
  assert float(model.apply(big, x, lens).penalties["saturation"]) > float(
      out.penalties["saturation"])


def test_relaxation_penalty_and_tying():
  model = models.get("neural_gpu", 4, nmaps=4, relax_copies=3)
  x, lens = _batch(np.random.default_rng(8), 4, 1, 5, [5])
  params = model.init(jax.random.key(0), x, lens)["params"]
  assert params["gate_kernel"].shape[0] == 3
  assert float(ngpu.relaxation_penalty(params)) > 0
  tied = ngpu.tie_copies(params)
  assert float(ngpu.relaxation_penalty(tied)) == pytest.approx(0.0, abs=1e-10)
  for name in ngpu.RELAXED_PARAMS:
    np.testing.assert_allclose(tied[name][0], params[name].mean(axis=0), rtol=1e-6)


def test_unknown_model_and_parameter():
  with pytest.raises(ValueError, match="valid models: .*dngpu.*neural_gpu"):
    models.get("transformer", 4)
  with pytest.raises(ValueError, match="no parameter.*nmap.*valid: .*nmaps"):
    models.get("neural_gpu", 4, nmap=3)


@pytest.mark.parametrize("rate", ["dropout", "input_dropout", "zoneout"])
def test_rates_outside_zero_one_are_refused(rate):
  with pytest.raises(ValueError,
                     match=f"model.{rate} is a rate and must be in \\[0, 1\\), got 1.5"):
    models.get("dngpu", 4, **{rate: 1.5})
  assert getattr(models.get("dngpu", 4, **{rate: 0.5}), rate) == 0.5


def test_invalid_names_and_params_list_valid_ones():
  """The baselines' named options (activation, weight init, norm) and parameters."""
  with pytest.raises(ValueError, match="valid: elu, gelu, leaky_relu, relu, sigmoid, tanh"):
    models.get("mlp", 3, fixed_length=4, activation="swish")
  with pytest.raises(ValueError, match="he_normal"):
    models.get("highway_mlp", 3, fixed_length=4, weight_init="zeros")
  with pytest.raises(ValueError, match="batch, layer, none"):
    models.get("mlp", 3, fixed_length=4, norm="group")
  with pytest.raises(ValueError, match="hidden"):
    models.get("gru", 3, hidden_size=8)
  assert {"mlp", "highway_mlp", "rnn", "gru", "lstm", "highway"} <= set(models.names())


def test_importing_the_models_changes_no_process_setting():
  """Malloc tuning (cpu_tuning) is the entry points' call (launch.py, benchmarks, conftest)."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  code = "from neural_gpu import cpu_tuning, models, train; print(cpu_tuning._applied)"
  out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=root), check=True)
  assert out.stdout.split() == ["None"]
