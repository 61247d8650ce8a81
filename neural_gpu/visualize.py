"""Pictures of what a trained model computes, and of how its training went.

  python launch.py --mode=visualize --workdir=runs/default                  # latest checkpoint
  python launch.py --mode=visualize --workdir=runs/default --length=101 --example=3
  python launch.py --mode=visualize --workdir=runs/badd --kind=carry --channels=0,5,7

`visualize` runs one test example through the model's own time loop with trace=True (every
step's state comes back from the scan that computes the logits; ModelOutput.trace) and writes
DIR/visualize/step_<N>_L<L>[_<kind>][_ex<K>].png and .gif:
  (a) the input, the target and the final output as rows of symbols, wrong outputs boxed in red;
  (b) the answer over time: the readout applied to the state after every step (steps by
      positions), as the predicted symbol and as right/wrong, which shows when each output
      symbol becomes right (e.g. a carry travelling);
  (c) the state: per channel for the DNGPU, per channel and height row for the Neural GPU (steps
      by positions); the top layer's output units against steps for the recurrent baselines.
The GIF animates the state over steps (channels, or channel x height row, by positions).
The state pictures follow the Neural GPU talk (Kaiser 2016) and the DNGPU reference, which
writes one image of steps by positions per unit.

`write_curves(workdir)` draws DIR/curves.png from DIR/metrics.jsonl (loss, training errors,
learning rate, curriculum length against step); the trainer rewrites it at every checkpoint and
every evaluation report.
"""

import inspect
import json
import math
import os
from typing import NamedTuple

import numpy as np

from neural_gpu import workdir as workdir_lib

MAX_DRAW_LENGTH = 400  # default cap on --length: an L x L picture per channel beyond is unreadable
MAX_GIF_FRAMES = 200  # longer traces are subsampled evenly (first and last step kept)
DEFAULT_CHANNELS = {"grid": 8, "height": 4}  # most active channels drawn when none are asked for
DPI = 100
CELL_INCHES = 0.08  # one step or position; panels are clipped to [MIN, MAX]_PANEL_INCHES
MIN_PANEL_INCHES, MAX_PANEL_INCHES = 0.5, 4.0
ROW_INCHES = 1.2  # the symbol rows (a)
MARGIN_INCHES = 0.7  # per panel: titles, tick labels


class Trace(NamedTuple):
  """One example traced through a model (numpy).

  inputs, targets, outputs: int (L,) symbol ids; outputs the final argmax.
  states: float32 (T + 1, L, C) for models with a state per position (states[t] after t steps;
    C = height * channels, height folded as in ngpu.py), or (2L, hidden) for recurrent nets.
  predictions: int, the readout's argmax on each state: (T + 1, L) or (2L,).
  height: rows folded into C (Neural GPU), 1 otherwise.
  """
  inputs: np.ndarray
  targets: np.ndarray
  outputs: np.ndarray
  states: np.ndarray
  predictions: np.ndarray
  height: int = 1

  @property
  def recurrent(self) -> bool:
    return self.states.ndim == 2

  @property
  def num_channels(self) -> int:
    return self.states.shape[-1] // self.height


def has_time_loop(model) -> bool:
  """Whether the model can return its per-step states (its __call__ takes `trace`)."""
  return "trace" in inspect.signature(model.__call__).parameters


def traceable_models() -> list[str]:
  from neural_gpu import models
  names = []
  for name in models.names():
    try:
      if has_time_loop(models.get(name, 2)):
        names.append(name)
    except (TypeError, ValueError):
      pass
  return names


def trace_example(model, variables, inputs: np.ndarray, targets: np.ndarray) -> Trace:
  """Runs one example (inputs, targets: int (L,)) with trace=True; the Neural GPU's height
  comes from the model."""
  import jax
  import jax.numpy as jnp

  length = len(inputs)
  run = jax.jit(lambda v, x, n: model.apply(v, x, n, train=False, trace=True))
  out = jax.device_get(run(variables, jnp.asarray(inputs)[None], jnp.array([length])))
  states = np.asarray(out.trace["states"])[:, 0]
  return Trace(np.asarray(inputs), np.asarray(targets), np.argmax(out.logits[0], -1),
               states, np.argmax(out.trace["logits"][:, 0], -1),
               getattr(model, "height", 1) if states.ndim == 3 else 1)


def pick_channels(trace: Trace, channels=None) -> list[int]:
  """The channels to draw: those asked for (checked), else the most active ones (largest
  variance over steps, positions and rows), in index order. Recurrent nets: all units."""
  count = trace.num_channels
  if channels:
    check_channels(channels, count)
    return list(channels)
  if trace.recurrent:
    return list(range(count))
  per_channel = trace.states.reshape(*trace.states.shape[:2], trace.height, count)
  activity = per_channel.var(axis=(0, 1, 2))
  keep = DEFAULT_CHANNELS["height" if trace.height > 1 else "grid"]
  return sorted(np.argsort(-activity, kind="stable")[:keep].tolist())


def check_channels(channels, count: int) -> None:
  bad = [c for c in channels if not 0 <= c < count]
  if bad:
    raise ValueError(f"channel {bad[0]} out of range: the model has {count} (0..{count - 1})")


def panel_inches(rows: int, cols: int) -> tuple[float, float]:
  """(width, height) of one picture of rows x cols cells: proportional, clipped."""
  clip = lambda n: min(max(n * CELL_INCHES, MIN_PANEL_INCHES), MAX_PANEL_INCHES)
  return clip(cols), clip(rows)


def _layout(trace: Trace, channels: list[int]):
  """Grid of state panels: (rows, cols, [(row, col, channel, height row)], panel size)."""
  if trace.recurrent:
    return 1, 1, [(0, 0, None, None)], panel_inches(len(channels), len(trace.states))
  size = panel_inches(len(trace.states), len(trace.inputs))
  if trace.height > 1:  # one column per channel, one row per height row
    cells = [(r, i, c, r) for i, c in enumerate(channels) for r in range(trace.height)]
    return trace.height, len(channels), cells, size
  cols = min(4, len(channels))
  cells = [(i // cols, i % cols, c, 0) for i, c in enumerate(channels)]
  return math.ceil(len(channels) / cols), cols, cells, size


def figure_inches(trace: Trace, channels: list[int]) -> tuple[float, float]:
  """(width, height) of the PNG in inches; pixels are these times DPI."""
  rows, cols, _, (pw, ph) = _layout(trace, channels)
  answer_w, answer_h = (panel_inches(2, len(trace.states)) if trace.recurrent
                        else panel_inches(len(trace.states), len(trace.inputs)))
  answers = 1 if trace.recurrent else 2
  width = max(cols * (pw + MARGIN_INCHES), answers * (answer_w + MARGIN_INCHES), 4.0)
  height = ROW_INCHES + (answer_h + MARGIN_INCHES) + rows * (ph + MARGIN_INCHES)
  return round(width, 2), round(height, 2)


def _symbol_cmap(vocab: int):
  from matplotlib import colormaps
  from matplotlib.colors import ListedColormap
  return ListedColormap(colormaps["tab20"].colors[:max(vocab, 2)])


def _right_wrong_cmap():
  from matplotlib.colors import ListedColormap
  return ListedColormap(["#d62728", "#2ca02c", "#dddddd"])  # wrong, right, not an output


def _write_text(ax, grid: np.ndarray, symbols: list[str]) -> None:
  if grid.shape[1] > 60:
    return  # too small to read
  for (r, c), s in np.ndenumerate(grid):
    ax.text(c, r, symbols[s], ha="center", va="center", fontsize=7)


def draw_figure(trace: Trace, path: str, symbols: list[str], title: str,
                channels: list[int]) -> None:
  """Writes the PNG of panels (a), (b), (c) (see the module docstring) to `path`."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from matplotlib.patches import Rectangle
  from matplotlib.ticker import FixedLocator, MaxNLocator

  vocab = len(symbols)
  length = len(trace.inputs)
  rows, cols, cells, (pw, ph) = _layout(trace, channels)
  width, height = figure_inches(trace, channels)
  fig = plt.figure(figsize=(width, height), dpi=DPI, layout="constrained")
  answer_h = height - ROW_INCHES - rows * (ph + MARGIN_INCHES)
  top, middle, bottom = fig.subfigures(3, 1, height_ratios=[ROW_INCHES, answer_h,
                                                            height - ROW_INCHES - answer_h])
  fig.suptitle(title, fontsize=9)

  ax = ax_a = top.subplots()
  rows_abc = np.stack([trace.inputs, trace.targets, trace.outputs])
  ax.imshow(rows_abc, cmap=_symbol_cmap(vocab), vmin=-0.5, vmax=vocab - 0.5,
            aspect="auto", interpolation="nearest")
  _write_text(ax, rows_abc, symbols)
  wrong = np.flatnonzero(trace.outputs != trace.targets)
  for c in wrong:
    ax.add_patch(Rectangle((c - 0.5, 1.5), 1, 1, fill=False, edgecolor="red", lw=1.5))
  ax.set_yticks([0, 1, 2], ["input", "target", "output"], fontsize=8)
  ax.set_xlabel("position", fontsize=8)
  ax.set_title(f"(a) {len(wrong)} of {length} output symbols wrong", fontsize=9)

  if trace.recurrent:  # the readout at each read-then-emit step; outputs at steps L..2L-1
    ax = middle.subplots()
    emitted = np.full(len(trace.predictions), 2)
    emitted[length:] = trace.predictions[length:] == trace.targets
    ax.imshow(np.stack([trace.predictions, np.zeros_like(trace.predictions)]),
              cmap=_symbol_cmap(vocab), vmin=-0.5, vmax=vocab - 0.5, aspect="auto",
              interpolation="nearest")
    ax.imshow(emitted[None], cmap=_right_wrong_cmap(), vmin=-0.5, vmax=2.5, aspect="auto",
              interpolation="nearest", extent=(-0.5, len(emitted) - 0.5, 1.5, 0.5))
    ax.set_yticks([0, 1], ["readout", "right?"], fontsize=8)
    ax.set_xlabel("step (reads 0..L-1, emits L..2L-1)", fontsize=8)
    ax.set_title("(b) answer over time: the readout at every step", fontsize=9)
  else:
    ax_sym, ax_ok = middle.subplots(1, 2)
    ax_sym.imshow(trace.predictions, cmap=_symbol_cmap(vocab), vmin=-0.5, vmax=vocab - 0.5,
                  aspect="auto", interpolation="nearest")
    ax_ok.imshow((trace.predictions == trace.targets).astype(int), cmap=_right_wrong_cmap(),
                 vmin=-0.5, vmax=2.5, aspect="auto", interpolation="nearest")
    ax_sym.set_title("(b) readout after each step: symbol", fontsize=9)
    ax_ok.set_title("right (green) / wrong (red)", fontsize=9)
    for a in (ax_sym, ax_ok):
      a.set_xlabel("position", fontsize=8)
      a.set_ylabel("step", fontsize=8)

  axes = bottom.subplots(rows, cols, squeeze=False)
  shown = (trace.states[:, channels] if trace.recurrent else
           trace.states.reshape(*trace.states.shape[:2], trace.height, -1)[..., channels])
  limit = float(np.max(np.abs(shown))) or 1.0
  bottom.suptitle("(c) state" + (": top layer's output units" if trace.recurrent else
                                 " after each step, per channel (steps by positions)"),
                  fontsize=9)
  for r, c, channel, row in cells:
    ax = axes[r, c]
    if trace.recurrent:
      image = shown.T
      ax.set_xlabel("step", fontsize=8)
      ax.set_ylabel("unit", fontsize=8)
    else:
      image = trace.states[:, :, row * trace.num_channels + channel]
      ax.set_title(f"channel {channel}" + (f", row {row}" if trace.height > 1 else ""),
                   fontsize=8)
      ax.set_xlabel("position", fontsize=7)
      ax.set_ylabel("step", fontsize=7)
    im = ax.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto",
                   interpolation="nearest")
    ax.tick_params(labelsize=6)
  for a in fig.get_axes():  # steps and positions are whole numbers
    a.xaxis.set_major_locator(MaxNLocator(integer=True))
    a.yaxis.set_major_locator(MaxNLocator(integer=True))
  ax_a.yaxis.set_major_locator(FixedLocator([0, 1, 2]))
  for r in range(rows):
    for c in range(cols):
      if not axes[r, c].images:
        axes[r, c].axis("off")
  bottom.colorbar(im, ax=axes, shrink=0.6)
  fig.savefig(path, dpi=DPI)
  plt.close(fig)


def gif_frames(num_states: int) -> np.ndarray:
  """Indices of the states animated: all, or MAX_GIF_FRAMES evenly spaced (first and last)."""
  return np.unique(np.linspace(0, num_states - 1, min(num_states, MAX_GIF_FRAMES)).round()
                   .astype(int))


def draw_gif(trace: Trace, path: str, title: str) -> None:
  """Writes the state as an animation over steps: channels by positions (DNGPU), channel x
  height row by positions (Neural GPU: each channel's rows together), or units by steps so
  far (recurrent nets)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from matplotlib.animation import FuncAnimation, PillowWriter

  steps = len(trace.states)
  if trace.recurrent:
    images = [np.where(np.arange(steps)[None, :] <= t, trace.states.T, np.nan)
              for t in range(steps)]
    xlabel, ylabel = "step", "unit"
  else:  # (T+1, L, h*m) -> (T+1, m*h, L): rows grouped by channel
    length = len(trace.inputs)
    grouped = trace.states.reshape(steps, length, trace.height, -1).transpose(0, 3, 2, 1)
    images = grouped.reshape(steps, -1, length)
    xlabel = "position"
    ylabel = "channel x height row" if trace.height > 1 else "channel"
  limit = float(np.nanmax(np.abs(trace.states))) or 1.0
  w, h = panel_inches(images[0].shape[0], images[0].shape[1])
  fig, ax = plt.subplots(figsize=(w + 1.5, h + 1.0), dpi=DPI, layout="constrained")
  im = ax.imshow(images[0], cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto",
                 interpolation="nearest")
  ax.set_xlabel(xlabel, fontsize=8)
  ax.set_ylabel(ylabel, fontsize=8)
  ax.tick_params(labelsize=6)
  frames = gif_frames(steps)

  def show(t):
    im.set_data(images[t])
    ax.set_title(f"{title}\nstep {t}/{steps - 1}", fontsize=8)
    return (im,)

  fps = min(max(len(frames) / 8.0, 2.0), 20.0)  # about 8 s in all
  FuncAnimation(fig, show, frames=frames, blit=False).save(path, writer=PillowWriter(fps=fps))
  plt.close(fig)


def visualize(workdir: str, step: int | None = None, length: int | None = None,
              example: int = 0, kind: str | None = None, channels=None, best: bool = False,
              max_length: int = MAX_DRAW_LENGTH) -> list[str]:
  """Traces test example `example` at `length` (default: the training maximum) through the
  checkpoint `step` (default: latest; `best`: early stopping's) and writes its PNG and GIF
  under <workdir>/visualize/; returns their paths.

  The example is the one the evaluator tests as number `example` at that length (same data
  stream and batching), or of the hard set `kind`. Raises ValueError or workdir.TrainingError
  (one line) on bad input, before anything is written: no config or checkpoint, a model
  without a time loop, a length the task cannot make or above `max_length`, an example index
  or channel out of range, an unknown kind.
  """
  from neural_gpu import evaluate as eval_lib
  from neural_gpu import state as state_lib
  from neural_gpu import workdir as workdir_lib

  config = workdir_lib.load_config(workdir)
  task = state_lib.build_task(config)
  model = state_lib.build_model(config, task)
  if not has_time_loop(model):
    raise ValueError(f"model {config.model.name!r} has no time loop to trace; visualize works "
                     f"for {', '.join(traceable_models())}")
  if length is None:
    length = task.nearest_valid_length(config.train.max_length)
  if not task.is_valid_length(length):
    raise ValueError(f"{task.name} cannot make length {length} ({task.length_rule()}); "
                     f"valid lengths up to it: ...{task.valid_lengths(length)[-3:]}")
  if length > max_length:
    raise ValueError(f"--length={length} is above the drawing cap {max_length}: pictures of "
                     f"{length} steps by {length} positions are too big to read; pick a shorter "
                     "length or raise --max_draw_length")
  if kind is not None and kind not in task.hard_kinds:
    raise ValueError(f"{task.name} has no hard test set {kind!r}; valid: "
                     f"{', '.join(task.hard_kinds) or 'none'}")
  count = eval_lib.config_count(config, length)
  if not 0 <= example < count:
    raise ValueError(f"--example={example} is out of range: the evaluation tests {count} "
                     f"examples at length {length} (0..{count - 1}); raise "
                     "--config.eval.num_examples in training to test more")
  if channels:
    check_channels(channels, getattr(model, "nmaps", None) or model.hidden)
  run = eval_lib.restore_checkpoint(config, workdir, step, best)
  state, step = run.state, run.step

  batch = eval_lib.batch_size_for(length, count)
  data = eval_lib.eval_batch(task, config.seed, eval_lib.EVAL_STREAM, length, example // batch,
                             batch, kind)
  row = example % batch
  variables = {"params": state.params, **state.model_state}
  trace = trace_example(run.model, variables, data.inputs[row], data.targets[row])
  chosen = pick_channels(trace, channels)

  out_dir = os.path.join(workdir, workdir_lib.VISUALIZE)
  os.makedirs(out_dir, exist_ok=True)
  stem = f"step_{step}_L{length}" + (f"_{kind}" if kind else "") + (
      f"_ex{example}" if example else "")
  title = (f"{config.model.name} on {task.name}{' ' + kind if kind else ''}, step {step}, "
           f"length {length}, example {example}")
  png, gif = os.path.join(out_dir, stem + ".png"), os.path.join(out_dir, stem + ".gif")
  draw_figure(trace, png, task.symbols, title, chosen)
  draw_gif(trace, gif, title)
  return [png, gif]


def write_curves(workdir: str) -> str | None:
  """Draws <workdir>/curves.png from metrics.jsonl: loss, training sequence and symbol error,
  learning rate (the config's schedule times the plateau scale) and curriculum length against
  step. Returns its path, or None when nothing is logged yet. Written atomically."""
  path = workdir_lib.metrics_path(workdir)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    records = [json.loads(line) for line in f if line.strip()]
  if not records:
    return None
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  steps = np.array([r["step"] for r in records])
  column = lambda k: np.array([r.get(k, np.nan) for r in records], float)
  lr, lr_label = column("lr_scale"), "learning-rate scale"
  if os.path.exists(workdir_lib.config_path(workdir)):
    from neural_gpu import optimizers
    config = workdir_lib.load_config(workdir)
    lr = lr * np.asarray(optimizers.schedule(config.optimizer)(steps), float)
    lr_label = "learning rate"

  fig, axes = plt.subplots(2, 2, figsize=(8, 5), dpi=DPI, layout="constrained", sharex=True)
  axes[0, 0].plot(steps, column("loss"))
  axes[0, 0].set_yscale("log")
  axes[0, 0].set_title("training loss", fontsize=9)
  axes[0, 1].plot(steps, column("seq_err"), label="sequence error")
  axes[0, 1].plot(steps, column("sym_err"), label="symbol error")
  axes[0, 1].set_ylim(-0.02, 1.02)
  axes[0, 1].legend(fontsize=7)
  axes[0, 1].set_title("training error", fontsize=9)
  axes[1, 0].plot(steps, lr)
  if np.all(lr[np.isfinite(lr)] > 0):
    axes[1, 0].set_yscale("log")
  axes[1, 0].set_title(lr_label, fontsize=9)
  axes[1, 1].plot(steps, column("length"), drawstyle="steps-post")
  axes[1, 1].set_title("curriculum length", fontsize=9)
  for ax in axes[1]:
    ax.set_xlabel("step", fontsize=8)
  fig.suptitle(os.path.basename(os.path.abspath(workdir)), fontsize=9)
  out = os.path.join(workdir, workdir_lib.CURVES)
  fig.savefig(out + ".tmp", format="png", dpi=DPI)
  plt.close(fig)
  os.replace(out + ".tmp", out)
  return out
