"""Optimizers by name, the DNGPU AdaMax schedule, and gradient noise that really acts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import base, tiny
from neural_gpu import optimizers, train


def config(**kw):
  """The base config's optimizer section with learning rate 0.1 and `kw` changed."""
  c = base.get_config().optimizer
  c.update(learning_rate=0.1, **kw)
  return c


@pytest.mark.parametrize("name", optimizers.names())
def test_every_optimizer_descends_a_quadratic(name):
  opt = optimizers.make(config(name=name, clip_norm=1.0))
  params = {"w": jnp.array([3.0, -2.0])}
  state = opt.init(params)
  loss = lambda p: jnp.sum(p["w"] ** 2)
  start = loss(params)
  for _ in range(20):
    updates, state = opt.update(jax.grad(loss)(params), state, params)
    params = jax.tree.map(lambda p, u: p + u, params, updates)
  assert loss(params) < start


def test_unknown_optimizer_and_schedule_list_valid_names():
  with pytest.raises(ValueError, match="valid optimizers: adagrad, adam, adamax"):
    optimizers.make(config(name="lamb"))
  with pytest.raises(ValueError, match="valid: constant, exponential, warmup"):
    optimizers.make(config(name="adam", schedule="cosine"))
  with pytest.raises(ValueError, match="clip_multiplier needs optimizer.name=adamax"):
    optimizers.make(config(name="adam", clip_multiplier=1.2))


def test_schedules():
  assert float(optimizers.schedule(config(schedule="warmup", warmup_steps=10))(5)) == \
      pytest.approx(0.05)
  decay = optimizers.schedule(config(schedule="exponential", decay_steps=10, decay_rate=0.5))
  assert float(decay(10)) == pytest.approx(0.05)


def test_dngpu_beta2_schedule():
  assert float(optimizers.dngpu_b2(0.0)) == pytest.approx(0.99)
  assert float(optimizers.dngpu_b2(2000.0)) == pytest.approx(0.995)
  assert float(optimizers.dngpu_b2(1e6)) == pytest.approx(1 - 5e-4)


def test_dngpu_adamax_clips_each_gradient_to_its_running_max():
  """clip_multiplier 1.2: a gradient element is cut to 1.2 x its running max + 1e-4, so an
  outlier raises the max by at most that much; off (0), the outlier sets the max."""
  params = {"w": jnp.zeros(2)}
  small, spike = {"w": jnp.array([1.0, -1.0])}, {"w": jnp.array([100.0, 1.0])}
  for multiplier, first_max, spike_max in ((1.2, 1e-4, 1.2 * 1e-4 + 1e-4), (0.0, 1.0, 100.0)):
    opt = optimizers.scale_by_adamax_dngpu(clip_multiplier=multiplier)
    state = opt.init(params)
    updates, state = opt.update(small, state)
    np.testing.assert_allclose(state.nu["w"], [first_max, first_max], rtol=1e-6)
    np.testing.assert_allclose(updates["w"], [1.0, -1.0], rtol=1e-3)  # sign of the gradient
    _, state = opt.update(spike, state)
    assert float(state.nu["w"][0]) == pytest.approx(spike_max, rel=1e-5)


def test_gradient_noise_has_the_annealed_variance():
  grads = {"a": jnp.zeros((200_000,)), "b": jnp.zeros((3, 4))}
  for step in (0, 100):
    noisy = optimizers.gradient_noise(grads, jax.random.key(0), jnp.array(step), 0.01, 0.55)
    expected = 0.01 / (1 + step) ** 0.55
    assert float(jnp.var(noisy["a"])) == pytest.approx(expected, rel=0.02)
    assert noisy["b"].shape == (3, 4)


def test_gradient_noise_reaches_the_parameter_update(tmp_path):
  """The reference code computed noise and then dropped it; here it must change the update."""
  results = {}
  for noise in (0.0, 1.0):
    c = tiny.get_config()
    c.optimizer.grad_noise = noise
    trainer = train.Trainer(c, str(tmp_path / str(noise)))
    state, host = trainer.init_state(), trainer.init_host()
    new, _ = trainer.train_step(state, trainer.batches(0, host), trainer.hyper(host))
    again, _ = trainer.train_step(state, trainer.batches(0, host), trainer.hyper(host))
    results[noise] = new.params
    jax.tree.map(np.testing.assert_array_equal, new.params, again.params)  # reproducible
  diffs = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), results[0.0], results[1.0])
  assert max(jax.tree.leaves(diffs)) > 1e-4


@pytest.mark.parametrize("rule,losses,expect_decays", [
    ("ngpu", [1.0, 0.9, 0.8, 0.85], 0),  # better than the worst of the last 3: no decay
    ("ngpu", [1.0, 0.9, 0.8, 1.1], 1),
    ("dngpu", [1.0, 0.9, 0.95, 0.96], 1),  # best of the last 2 worse than the best before
    ("dngpu", [1.0, 0.9, 0.95, 0.85], 0),
    # The reference never restarts its history: a decay at 0.96, and another at 0.97 because
    # 0.9 is still the best of the last three (the 'dngpu' rule restarts and waits).
    ("dngpu_reference", [1.0, 0.9, 0.95, 0.96, 0.97], 2),
    ("dngpu", [1.0, 0.9, 0.95, 0.96, 0.97], 1),
    ("dngpu_reference", [1.0, 0.9, 0.95, 0.85, 0.8], 0),
])
def test_decay_on_plateau(rule, losses, expect_decays):
  c = base.get_config().train
  c.update(plateau_rule=rule, plateau_patience=3 if rule == "ngpu" else 2, plateau_decay=0.5,
           min_lr_scale=0.0)
  scale, history = 1.0, []
  for loss in losses:
    scale, history = train.decay_on_plateau(c, scale, history, loss)
  assert scale == 0.5 ** expect_decays


def test_dngpu_adamax_without_bias_correction_is_the_reference_update():
  """adamax.py by hand, two steps: g clipped to +-(1.2 u + 1e-4), m = 0.9 m + 0.1 g,
  u = max(beta2 u, |g|), update = m / (u + eps) (the trainer then scales by -lr)."""
  opt = optimizers.scale_by_adamax_dngpu(clip_multiplier=1.2, bias_correction=False)
  params = {"w": jnp.zeros(2)}
  state = opt.init(params)
  g1, g2 = np.array([0.5, -2.0]), np.array([0.3, 4.0])
  m, u, eps = np.zeros(2), np.zeros(2), 1e-8
  for step, g in enumerate((g1, g2)):
    updates, state = opt.update({"w": jnp.asarray(g, jnp.float32)}, state)
    limit = 1.2 * u + 1e-4
    g = np.clip(g, -limit, limit)
    m = 0.9 * m + 0.1 * g
    u = np.maximum((1 - max(5e-4, 0.01 * 0.5 ** (step / 2000))) * u, np.abs(g))
    np.testing.assert_allclose(updates["w"], m / (u + eps), rtol=1e-5)
  with_correction = optimizers.scale_by_adamax_dngpu(clip_multiplier=1.2)
  first, _ = with_correction.update({"w": jnp.asarray(g1, jnp.float32)}, with_correction.init(params))
  np.testing.assert_allclose(first["w"], 10 * np.array([0.1, -0.1]) * 1e-4 / (1e-4 + eps),
                             rtol=1e-5)


def test_lr_gradient_noise_scales_with_the_learning_rate_and_is_truncated():
  grads = {"a": jnp.zeros((200_000,))}
  for lr in (0.01, 0.001):
    noisy = optimizers.lr_gradient_noise(grads, jax.random.key(0), jnp.float32(lr), 1e-4)["a"]
    # N(0,1) cut at +-2 has standard deviation 0.8796.
    assert float(jnp.std(noisy)) == pytest.approx(0.8796 * lr * 1e-4, rel=0.02)
    assert float(jnp.max(jnp.abs(noisy))) <= 2 * lr * 1e-4 * (1 + 1e-6)


def test_lr_gradient_noise_reaches_the_parameter_update(tmp_path):
  results = {}
  for noise in (0.0, 1e-2):
    c = tiny.get_config("model=dngpu")
    c.optimizer.update(grad_noise_lr=noise, clip_norm=0.0)
    trainer = train.Trainer(c, str(tmp_path / str(noise)))
    state, host = trainer.init_state(), trainer.init_host()
    results[noise], _ = trainer.train_step(state, trainer.batches(0, host), trainer.hyper(host))
  diffs = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                       results[0.0].params, results[1e-2].params)
  assert max(jax.tree.leaves(diffs)) > 1e-6


def test_dngpu_adamax_leaves_an_always_zero_gradient_row_at_zero_even_with_eps_0():
  """A row whose gradient is always 0 (the PAD embedding) has m = n = 0: its update is 0, not
  0/0 = NaN, while the other rows get exactly m / (1 - b1^t) / (n + eps)."""
  opt = optimizers.scale_by_adamax_dngpu(eps=0.0)
  params = {"w": jnp.zeros((2, 2))}
  state = opt.init(params)
  grads = {"w": jnp.array([[0.0, 0.0], [0.5, -2.0]])}
  for _ in range(3):
    updates, state = opt.update(grads, state)
  np.testing.assert_array_equal(updates["w"][0], [0.0, 0.0])
  expected = state.mu["w"][1] / (1 - 0.9 ** 3) / state.nu["w"][1]
  np.testing.assert_allclose(updates["w"][1], expected, rtol=1e-6)
  np.testing.assert_allclose(updates["w"][1], [1.0, -1.0], rtol=1e-6)
