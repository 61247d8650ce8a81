"""neural_gpu/visualize.py: traces from the models' own loops, picture sizes, curves, bad input."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from experiments import tiny
from neural_gpu import models, train, visualize, workdir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRACED = [("dngpu", dict(nmaps=6)),
          ("neural_gpu", dict(nmaps=4)), ("neural_gpu", dict(nmaps=4, conv_impl="conv")),
          ("gru", dict(hidden=8)), ("lstm", dict(hidden=8, num_layers=2))]


def init(name, params, length=7, batch=2):
  model = models.get(name, 3, **params)
  inputs = jax.random.randint(jax.random.key(0), (batch, length), 1, 3)
  lengths = jnp.array([length, length - 2][:batch])
  return model, model.init(jax.random.key(1), inputs, lengths), inputs, lengths


@pytest.mark.parametrize("name,params", TRACED)
def test_last_traced_state_gives_exactly_the_logits(name, params):
  model, variables, inputs, lengths = init(name, params)
  plain = model.apply(variables, inputs, lengths)
  traced = model.apply(variables, inputs, lengths, trace=True)
  assert plain.trace is None
  np.testing.assert_array_equal(traced.logits, plain.logits)
  states, p = traced.trace["states"], variables["params"]
  width = inputs.shape[1]
  if name in ("gru", "lstm"):  # read-then-emit: position j is read out at step lengths[b] + j
    assert states.shape == (2 * width, 2, 8)
    index = jnp.minimum(lengths[None, :] + jnp.arange(width)[:, None], 2 * width - 1)
    emitted = jnp.take_along_axis(states, index[..., None], axis=0).transpose(1, 0, 2)
    logits = emitted @ p["readout"]["kernel"] + p["readout"]["bias"]
  else:  # states[0] is the embedded input, then one state per step
    channels = params["nmaps"] * (4 if name == "neural_gpu" else 1)
    assert states.shape == (width + 1, 2, width, channels)
    logits = states[-1][..., :params["nmaps"]] @ p["output"] + p["output_bias"]
    # The first state is the input embedding, not a step: it differs from the second.
    assert not np.allclose(states[0], states[1])
  np.testing.assert_array_equal(logits, plain.logits)
  if states.ndim == 4:  # the per-step readout ends at the logits
    np.testing.assert_allclose(traced.trace["logits"][-1], plain.logits, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name,params", [TRACED[0], TRACED[1], TRACED[3]])
def test_picture_sizes_follow_length_and_step_count(name, params, tmp_path):
  sizes = []
  for length in (5, 30):
    model, variables, inputs, _ = init(name, params, length, batch=1)
    trace = visualize.trace_example(model, variables, np.asarray(inputs[0]),
                                    np.asarray(inputs[0]))
    steps = 2 * length if name == "gru" else length + 1
    assert len(trace.states) == len(trace.predictions) == steps
    channels = visualize.pick_channels(trace)
    png, gif = str(tmp_path / f"{length}.png"), str(tmp_path / f"{length}.gif")
    visualize.draw_figure(trace, png, ["_", "0", "1"], "t", channels)
    visualize.draw_gif(trace, gif, "t")
    width, height = visualize.figure_inches(trace, channels)
    with Image.open(png) as image:
      assert image.size == (round(width * visualize.DPI), round(height * visualize.DPI))
      sizes.append(image.size)
    with Image.open(gif) as image:
      assert image.n_frames == steps  # one frame per state
      sizes.append(image.size)
  png_small, gif_small, png_big, gif_big = sizes
  assert png_big[0] > png_small[0]  # positions (recurrent nets: steps) run along x
  if name != "gru":  # steps run down
    assert png_big[1] > png_small[1]
  assert gif_big[0] > gif_small[0]


def test_gif_frames_are_capped_and_keep_both_ends():
  frames = visualize.gif_frames(1001)
  assert len(frames) == visualize.MAX_GIF_FRAMES and frames[0] == 0 and frames[-1] == 1000
  assert list(visualize.gif_frames(6)) == [0, 1, 2, 3, 4, 5]


def test_write_curves_reads_metrics(tmp_path):
  assert visualize.write_curves(str(tmp_path)) is None  # nothing logged yet: nothing drawn
  with open(tmp_path / "metrics.jsonl", "w") as f:
    for step in (5, 10):
      f.write(json.dumps({"step": step, "loss": 1.0 / step, "seq_err": 0.5, "sym_err": 0.1,
                          "lr_scale": 1.0, "length": 9}) + "\n")
  path = visualize.write_curves(str(tmp_path))
  with Image.open(path) as image:
    assert image.size == (800, 500)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("run"))
  config = tiny.get_config("model=dngpu")
  config.train.num_steps = 10
  train.train_and_evaluate(config, workdir)
  return workdir


def test_visualize_writes_png_and_gif_and_curves(trained):
  assert os.path.exists(os.path.join(trained, "curves.png"))  # rewritten at the evaluation
  paths = visualize.visualize(trained, length=17, example=3, channels=[0, 5])
  assert [os.path.basename(p) for p in paths] == ["step_10_L17_ex3.png", "step_10_L17_ex3.gif"]
  with Image.open(paths[1]) as image:
    assert image.n_frames == 18
  assert os.path.exists(os.path.join(trained, "visualize", "step_10_L9.png")) is False


def test_bad_input_is_one_line_and_writes_nothing(trained, tmp_path, tree_digest):
  before = tree_digest(trained)
  cases = [(dict(length=0), "cannot make length 0"),
           (dict(length=401), "above the drawing cap 400"),
           (dict(length=9, example=16), "out of range: the evaluation tests 16"),
           (dict(example=-1), "out of range"),
           (dict(kind="carry"), "copy has no hard test set 'carry'"),
           (dict(channels=[99]), "channel 99 out of range"),
           (dict(step=5), "no checkpoint for step 5")]
  for kwargs, needle in cases:
    with pytest.raises((ValueError, train.TrainingError)) as e:
      visualize.visualize(trained, **kwargs)
    assert needle in str(e.value) and "\n" not in str(e.value)
  assert tree_digest(trained) == before
  empty = str(tmp_path / "untrained")
  workdir.save_config(tiny.get_config("model=dngpu"), empty)
  with pytest.raises(train.TrainingError, match="no checkpoint"):
    visualize.visualize(empty)
  mlp = str(tmp_path / "mlp")
  workdir.save_config(tiny.get_config("model=mlp"), mlp)
  with pytest.raises(ValueError, match="'mlp' has no time loop.*dngpu"):
    visualize.visualize(mlp)
  assert sorted(os.listdir(empty)) == sorted(os.listdir(mlp)) == ["config.json"]


def test_command_line_prints_the_paths_or_one_error_line(trained):
  run = lambda *a: subprocess.run([sys.executable, "launch.py", "--mode=visualize",
                                   f"--workdir={trained}", *a], cwd=ROOT, capture_output=True,
                                  text=True, timeout=300)
  result = run("--length=5")
  assert result.returncode == 0, result.stderr[-2000:]
  assert [l.split()[-1] for l in result.stdout.splitlines() if l.startswith("wrote")] == [
      os.path.join(trained, "visualize", "step_10_L5.png"),
      os.path.join(trained, "visualize", "step_10_L5.gif")]
  result = run("--example=99")
  assert result.returncode == 1
  assert [l for l in result.stderr.splitlines() if l.startswith("error:")] == [
      "error: --example=99 is out of range: the evaluation tests 16 examples at length 9 "
      "(0..15); raise --config.eval.num_examples in training to test more"]
