"""Metric writers: <workdir>/metrics.jsonl, TensorBoard event files, and a progress line."""

import json
import math
import os
import sys
import time

from tensorboardX import SummaryWriter

from neural_gpu import workdir as workdir_lib


def new_window() -> dict:
  """Sums of per-step scalars over a logging interval; JSON-able, so it goes into checkpoints
  and a resumed run logs the same means as one that never stopped."""
  return {"sums": {}, "count": 0}


def accumulate(window: dict, scalars: dict) -> None:
  """Adds one step's scalars (floats) to `window` in place."""
  for name, value in scalars.items():
    window["sums"][name] = window["sums"].get(name, 0.0) + float(value)
  window["count"] += 1


def window_means(window: dict) -> dict:
  """The mean of each scalar over the steps accumulated in `window` (every step once)."""
  return {name: total / window["count"] for name, total in window["sums"].items()}


def first_non_finite(scalars: dict, names) -> str | None:
  """The first of `names` whose value in `scalars` is NaN or infinite, or None."""
  return next((n for n in names if n in scalars and not math.isfinite(float(scalars[n]))), None)


class MetricWriter:
  """Appends one JSON object per logging step and mirrors scalars to TensorBoard."""

  def __init__(self, workdir: str, resume_step: int = 0, enabled: bool = True):
    self.enabled = enabled  # False: writes nothing (hosts other than the primary one)
    if not enabled:
      return
    self.path = workdir_lib.metrics_path(workdir)
    self._truncate_after(resume_step)
    self._tb = SummaryWriter(os.path.join(workdir, workdir_lib.TENSORBOARD))

  def _truncate_after(self, step: int) -> None:
    """Drops lines logged after the checkpoint we resume from: they will be logged again."""
    if not os.path.exists(self.path):
      return
    with open(self.path) as f:
      kept = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    with open(self.path, "w") as f:
      f.writelines(kept)

  def write(self, step: int, scalars: dict) -> None:
    if not self.enabled:
      return
    record = {"step": step, **{k: float(v) for k, v in scalars.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    for name, value in scalars.items():
      if math.isfinite(float(value)):
        self._tb.add_scalar(name, float(value), step)
    self._tb.flush()

  def close(self) -> None:
    if self.enabled:
      self._tb.close()


class Progress:
  """A one-line progress bar: a fixed-width bar, the count and whatever fields are given."""

  def __init__(self, total: int, label: str = "", start: int = 0, stream=sys.stderr):
    self.total, self.label, self.stream = total, label, stream
    self._start_count, self._t0 = start, time.time()

  def update(self, count: int, **fields) -> None:
    frac = count / max(self.total, 1)
    bar = "#" * int(20 * frac) + "." * (20 - int(20 * frac))
    rate = (count - self._start_count) / max(time.time() - self._t0, 1e-9)
    text = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in fields.items())
    self.stream.write(f"\r{self.label}[{bar}] {count}/{self.total} {text} ({rate:.2f}/s)")
    self.stream.flush()

  def close(self) -> None:
    self.stream.write("\n")
    self.stream.flush()
