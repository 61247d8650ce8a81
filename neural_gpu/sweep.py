"""Hyper-parameter sweeps: many runs of one experiment file, each with its own overrides.

An experiment file may define `sweep()` (or `sweep(arg)`, given the `:arg` of --config) next to
`get_config`. It returns a list of points; a point is a dict of flat dotted config keys to values,
e.g. {"model.relax_copies": 6, "optimizer.grad_noise": 0.0}. `grid` and `random_search` below
build such lists:

  from neural_gpu.sweep import grid
  def sweep():
    return grid(**{"model.relax_copies": [1, 6]}, optimizer__grad_noise=[0.0, 1e-3])

A point may also carry the key "arg" (`ARG`): the config file's `:arg` for that point (named
arguments such as "model=gru,task=copy", merged with the `:arg` given on the command line, whose
keys win), so a sweep can vary what only get_config(arg) picks, such as the model
(experiments/compare.py). `launch.py --sweep` runs them:

  python launch.py --config=experiments/sweep_ngpu_grid.py --workdir=runs/grid --sweep --parallel=2

Each point trains in `ROOT/<index>_<short name>/` (e.g. `003_relax_copies=6_grad_noise=0`) as a
separate `launch.py` process whose output goes to `log.txt` there (and one line per launch, with
its wall seconds and status, to `launches.jsonl`). A seed study (launch.py --seeds,
neural_gpu/seeds.py) runs its seeds through the same `run_points`. Overrides given on the sweep's
command line (`--config.a.b=v`) apply to every point and WIN over the point's own value for the
same key (so `--config.train.num_steps=100` shortens every run). A point is finished once its
`eval/step_<num_steps>.json` exists; a re-run skips finished points and resumes the others from
their checkpoints. A point that fails (bad override, non-finite loss, crash) is recorded as failed
and the sweep goes on. At the end, and after every point, `ROOT/summary.md` and `ROOT/summary.json`
list each point's overrides, status, steps, final training errors and length-generalization
errors (from its latest eval JSON).

This module never imports JAX: the sweep process only starts and watches the point processes.
"""

import glob
import importlib.util
import inspect
import itertools
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Iterable, Mapping, Sequence

from neural_gpu import workdir as workdir_lib

INDEX_WIDTH = 3
ARG = "arg"  # a point's key for the config file's `:arg` (see the module docstring)
MAX_NAME_CHARS = 96
LOG_NAME = "log.txt"


# -- building lists of points -----------------------------------------------------------------
def _axes(positional: Sequence[Mapping[str, Any]], keywords: Mapping[str, Any]) -> dict:
  """Merges axes given as dicts and as keywords; in a keyword, `__` stands for `.`."""
  axes = {}
  for mapping in positional:
    axes.update(mapping)
  axes.update({k.replace("__", "."): v for k, v in keywords.items()})
  for key in axes:
    if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", key):
      raise ValueError(f"sweep axis {key!r} is not a dotted config key such as 'model.nmaps'")
  return axes


def grid(*axes_dicts: Mapping[str, Sequence], **axes: Sequence) -> list[dict]:
  """The cartesian product of the axes, each a list of values; the first axis varies slowest.

  Keys are dotted config paths, given as a dict (`grid({"model.nmaps": [8, 16]})`), as keyword
  arguments with `__` for `.` (`grid(model__nmaps=[8, 16])`), or both.
  """
  merged = _axes(axes_dicts, axes)
  for key, values in merged.items():
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
      raise ValueError(f"grid axis {key!r} must be a list of values, got {values!r}")
  keys = list(merged)
  return [dict(zip(keys, combo)) for combo in itertools.product(*(list(merged[k]) for k in keys))]


def _draw(rng: random.Random, key: str, spec) -> Any:
  if isinstance(spec, list):
    if not spec:
      raise ValueError(f"random_search axis {key!r} has no values")
    return spec[rng.randrange(len(spec))]
  if isinstance(spec, tuple) and len(spec) in (2, 3):
    low, high = spec[0], spec[1]
    scale = spec[2] if len(spec) == 3 else "linear"
    if scale == "log":
      if not 0 < low <= high:
        raise ValueError(f"random_search axis {key!r}: a log range needs 0 < low <= high")
      return math.exp(rng.uniform(math.log(low), math.log(high)))
    if scale == "linear":
      return rng.uniform(low, high)
    if scale == "int":
      return rng.randint(int(low), int(high))
    raise ValueError(f"random_search axis {key!r}: scale must be 'linear', 'log' or 'int', "
                     f"got {scale!r}")
  raise ValueError(f"random_search axis {key!r} must be a list of choices or a tuple "
                   f"(low, high[, 'linear'|'log'|'int']), got {spec!r}")


def random_search(num: int, seed: int, *axes_dicts: Mapping[str, Any], **axes: Any) -> list[dict]:
  """`num` points drawn at random; the same seed always gives the same points.

  Each axis is a list (one value picked uniformly) or a tuple (low, high) for a uniform float,
  (low, high, 'log') for a log-uniform float, or (low, high, 'int') for an integer in [low, high].
  Keys as in `grid`.
  """
  merged = _axes(axes_dicts, axes)
  rng = random.Random(seed)
  return [{key: _draw(rng, key, spec) for key, spec in merged.items()} for _ in range(num)]


# -- names and command lines ------------------------------------------------------------------
def format_value(value: Any) -> str:
  """A value as a `--config.a.b=` flag parses it back."""
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, (list, tuple)):
    return repr(tuple(value))
  if isinstance(value, float):
    return repr(value)
  return str(value)


def _short_value(value: Any) -> str:
  if isinstance(value, bool):
    return str(value).lower()
  if isinstance(value, float):
    return f"{value:.3g}"
  if isinstance(value, (list, tuple)):
    return "-".join(_short_value(v) for v in value)
  return str(value)


def sanitize(text: str) -> str:
  """Keeps letters, digits and . = + - _; anything else becomes '-'."""
  text = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._=+-]+", "-", text)).strip("-.")
  return text or "point"


def default_workdir(config_flag, suffix: str = "") -> str:
  """runs/<config file stem>[_<its :arg>]<suffix>, sanitized: where a run, sweep or seed study
  goes without --workdir (experiments/default.py -> runs/default)."""
  from ml_collections import config_flags
  path, _, arg = config_flags.get_config_filename(config_flag).partition(":")
  stem = os.path.splitext(os.path.basename(path))[0]
  return os.path.join("runs", sanitize(f"{stem}_{arg}" if arg else stem) + suffix)


def _label(key: str) -> str:
  """The last part of a dotted key, or the section for `<section>.name` ('task.name' -> 'task')."""
  parts = key.split(".")
  return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def split_arg(arg: str | None) -> dict[str, str]:
  """A config file's named `:arg` ('model=gru,task=copy') as {key: text}, in order."""
  parts = [p.partition("=") for p in (arg or "").split(",") if p.strip()]
  return {k.strip(): v.strip() for k, _, v in parts}


def merge_arg(point_arg: str | None, command_arg: str | None) -> str:
  """The `:arg` a point runs with: its own named arguments, then the command line's, which win."""
  merged = {**split_arg(point_arg), **split_arg(command_arg)}
  return ",".join(f"{k}={v}" for k, v in merged.items())


def short_name(index: int, overrides: Mapping[str, Any]) -> str:
  """'<index>_<label>=<value>_...', labelled by the last part of each dotted key (the section for
  '<section>.name'; the whole key when two keys would share a label; an `arg` by its own named
  arguments), sanitized for use as a folder name and cut to MAX_NAME_CHARS."""
  items = []
  for key, value in overrides.items():
    items += list(split_arg(value).items()) if key == ARG else [(key, value)]
  labels = [_label(k) for k, _ in items]
  parts = []
  for (key, value), label in zip(items, labels):
    label = label if labels.count(label) == 1 else key
    parts.append(f"{label}={_short_value(value)}")
  body = sanitize("_".join(parts)) if parts else "base"
  return f"{index:0{INDEX_WIDTH}d}_{body}"[:MAX_NAME_CHARS]


def effective_overrides(point: Mapping[str, Any], command_line: Mapping[str, Any]) -> dict:
  """The point's overrides, then the sweep command line's, which win for a key given by both."""
  return {**{k: v for k, v in point.items() if k not in command_line}, **command_line}


def point_config_path(config_path: str, point: Mapping[str, Any]) -> str:
  """'file.py[:arg]' for a point: with an `arg` key, the file's arg merged with the point's."""
  if ARG not in point:
    return config_path
  path, _, arg = config_path.partition(":")
  return f"{path}:{merge_arg(point[ARG], arg)}"


def point_command(launcher: str, config_path: str, workdir: str, overrides: Mapping[str, Any],
                  python: str = sys.executable) -> list[str]:
  return ([python, launcher, f"--config={point_config_path(config_path, overrides)}",
           f"--workdir={workdir}"]
          + [f"--config.{k}={format_value(v)}" for k, v in overrides.items() if k != ARG])


# -- reading a point's folder -----------------------------------------------------------------
def read_jsonl(path: str) -> list[dict]:
  """The rows of a JSON-lines file ([] if it does not exist); a blank line or one cut short by a
  crash is skipped."""
  rows = []
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        try:
          rows.append(json.loads(line))
        except json.JSONDecodeError:
          pass
  return rows


def read_json(path: str) -> dict | None:
  """A JSON file's content, or None when it is missing or unreadable."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError):
    return None


def _last_metrics(workdir: str) -> dict | None:
  rows = read_jsonl(workdir_lib.metrics_path(workdir))
  return rows[-1] if rows else None


def _eval_steps(workdir: str) -> list[int]:
  steps = []
  for path in glob.glob(os.path.join(workdir, workdir_lib.EVAL, "step_*.json")):
    match = re.fullmatch(r"step_(\d+)\.json", os.path.basename(path))
    if match:
      steps.append(int(match.group(1)))
  return sorted(steps)


def _latest_eval(workdir: str) -> dict | None:
  for step in reversed(_eval_steps(workdir)):
    report = read_json(workdir_lib.eval_report_path(workdir, step))
    if report is not None:
      return report
  return None


def is_finished(workdir: str, num_steps: int) -> bool:
  return os.path.exists(workdir_lib.eval_report_path(workdir, num_steps))


def error_line(log_text: str, returncode: int) -> str:
  """The one-line reason a point failed: launch.py's 'error: ...' line, else the last line."""
  lines = [l.strip() for l in re.split(r"[\r\n]+", log_text) if l.strip()]
  for line in reversed(lines):
    if line.startswith("error: "):
      return line[len("error: "):]
  if returncode < 0:
    return f"killed by signal {-returncode}"
  tail = lines[-1] if lines else "no output"
  return f"exit status {returncode}: {tail}"[:400]


# -- the sweep ---------------------------------------------------------------------------------
def _load_module(path: str):
  if not os.path.exists(path):
    raise ValueError(f"config file {path} not found")
  spec = importlib.util.spec_from_file_location("sweep_experiment", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_points(config_path: str) -> list[dict]:
  """Imports the experiment file and returns its sweep() (misuse raises ValueError)."""
  path, _, arg = config_path.partition(":")
  module = _load_module(path)
  sweep_fn = getattr(module, "sweep", None)
  if not callable(sweep_fn):
    raise ValueError(f"{path} defines no sweep(); add one returning a list of override dicts "
                     "(see neural_gpu/sweep.py), or run without --sweep")
  takes_arg = bool(inspect.signature(sweep_fn).parameters)
  points = sweep_fn(arg or None) if takes_arg else sweep_fn()
  if not isinstance(points, (list, tuple)) or not points:
    raise ValueError(f"{path}: sweep() must return a non-empty list of override dicts, "
                     f"got {points!r}"[:300])
  for i, point in enumerate(points):
    if not isinstance(point, Mapping) or not all(isinstance(k, str) for k in point):
      raise ValueError(f"{path}: sweep() point {i} is not a dict of 'a.b' keys: {point!r}"[:300])
    if ARG in point and not isinstance(point[ARG], str):
      raise ValueError(f"{path}: sweep() point {i}: '{ARG}' must be a string such as "
                       f"'model=gru,task=copy', got {point[ARG]!r}"[:300])
  return [dict(p) for p in points]


class Point:
  """One run of the sweep: its overrides, folder and what became of it."""

  def __init__(self, index: int, overrides: dict, root: str, num_steps: int,
               name: str | None = None):
    self.index, self.overrides, self.num_steps = index, overrides, num_steps
    self.name = name or short_name(index, overrides)
    self.workdir = os.path.join(root, self.name)
    self.status = "pending"  # pending, running, ok, failed
    self.error = None
    self.skipped = False
    self.seconds = None

  def record(self, command_line: Mapping[str, Any], eval_lengths: list) -> dict:
    metrics = _last_metrics(self.workdir)
    report = _latest_eval(self.workdir)
    evals = {}
    if report:
      for r in report.get("results", []):
        if r["length"] not in eval_lengths:
          eval_lengths.append(r["length"])
        evals[str(r["length"])] = ({"not_applicable": r["not_applicable"]}
                                   if "not_applicable" in r else
                                   {"sequence_error": r.get("sequence_error"),
                                    "symbol_error": r.get("symbol_error"),
                                    "num_examples": r.get("num_examples")})
    return {
        "index": self.index,
        "name": self.name,
        "workdir": self.workdir,
        "overrides": self.overrides,
        "effective_overrides": effective_overrides(self.overrides, command_line),
        "status": self.status,
        "error": self.error,
        "skipped": self.skipped,
        "seconds": self.seconds,
        "num_steps": self.num_steps,
        "steps": int(metrics["step"]) if metrics else 0,
        "train": ({k: metrics.get(k) for k in ("seq_err", "sym_err", "loss", "length")}
                  if metrics else None),
        "eval_step": report.get("step") if report else None,
        "eval": evals,
    }


def _cell(value: Any, digits: int = 4) -> str:
  if value is None:
    return "-"
  if isinstance(value, float):
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
  return str(value).replace("|", "\\|")


def write_summary(root: str, config_path: str, command_line: Mapping[str, Any],
                  points: list[Point]) -> dict:
  lengths: list = []
  rows = [p.record(command_line, lengths) for p in points]
  lengths.sort()
  counts = {s: sum(r["status"] == s for r in rows)
            for s in ("ok", "failed", "interrupted", "pending", "running")}
  summary = {"config": config_path, "command_line_overrides": dict(command_line),
             "lengths": lengths, "counts": counts, "points": rows}
  workdir_lib.write_json(os.path.join(root, workdir_lib.SWEEP_SUMMARY), summary)

  keys = []
  for p in points:
    keys += [k for k in p.overrides if k not in keys]
  out = [f"# Sweep of {config_path}", ""]
  if command_line:
    given = ", ".join(f"`{k}={format_value(v)}`" for k, v in command_line.items())
    out.append(f"Command-line overrides (every point; they win over a point's own value): {given}")
    out.append("")
  out.append(f"{len(rows)} points: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ". "
             "Training errors are from each point's last metrics.jsonl line; the L=<length> "
             "columns are sequence error / symbol error from its latest eval/step_<N>.json.")
  out.append("")
  header = (["point"] + keys + ["status", "steps", "train seq_err", "train sym_err"]
            + [f"L={l}" for l in lengths])
  out.append("| " + " | ".join(header) + " |")
  out.append("|" + "---|" * len(header))
  for p, r in zip(points, rows):
    status = r["status"] if not r["error"] else f"{r['status']}: {r['error'][:160]}"
    train = r["train"] or {}
    cells = ([r["name"]]
             + [_cell(_short_value(p.overrides[k])) if k in p.overrides else "" for k in keys]
             + [_cell(status), f"{r['steps']}/{r['num_steps']}", _cell(train.get("seq_err")),
                _cell(train.get("sym_err"))])
    for l in lengths:
      e = r["eval"].get(str(l))
      if e is None:
        cells.append("-")
      elif "not_applicable" in e:
        cells.append("n/a")
      else:
        cells.append(f"{_cell(e['sequence_error'], 3)} / {_cell(e['symbol_error'], 4)}")
    out.append("| " + " | ".join(cells) + " |")
  failed = [r for r in rows if r["status"] == "failed"]
  if failed:
    out += ["", "## Failed points", ""]
    out += [f"- `{r['name']}`: {r['error']} (log: {os.path.join(r['workdir'], LOG_NAME)})"
            for r in failed]
  with open(os.path.join(root, "summary.md"), "w") as f:
    f.write("\n".join(out) + "\n")
  return summary


def _effective_num_steps(point: Mapping[str, Any], command_line: Mapping[str, Any],
                         config) -> int:
  """train.num_steps of a point: `config` already holds the command line's overrides."""
  value = config.train.num_steps
  if "train.num_steps" in command_line:  # for a point's own config (its `arg`) too
    value = command_line["train.num_steps"]
  elif "train.num_steps" in point:
    value = point["train.num_steps"]
  try:
    return int(value)
  except (TypeError, ValueError):
    return -1  # the point's run will fail and say why


LAUNCHES_NAME = "launches.jsonl"


def _append_launch(p: Point, t0: float, returncode: int | None) -> None:
  """One line per launch in <workdir>/launches.jsonl: the wall time a point's runs took."""
  record = {"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t0)),
            "seconds": round(time.time() - t0, 1), "returncode": returncode,
            "status": p.status, "error": p.error}
  with open(os.path.join(p.workdir, LAUNCHES_NAME), "a") as f:
    f.write(json.dumps(record) + "\n")


def run_points(points: list[Point], config_path: str, command_line: Mapping[str, Any],
               launcher: str, parallel: int, on_change, poll_seconds: float = 0.5) -> None:
  """Runs each unfinished point as a launch.py process, `parallel` at a time.

  A point whose eval/step_<num_steps>.json exists is skipped; the others resume from their
  checkpoints. Each launch appends its output to <workdir>/log.txt and one JSON line
  (start time, seconds, return code, status, error) to <workdir>/launches.jsonl. on_change()
  is called after the skips are known, after every point that ends, and on Ctrl-C (which stops
  the running points and re-raises KeyboardInterrupt).
  """
  todo = []
  for p in points:
    if is_finished(p.workdir, p.num_steps):
      p.status, p.skipped = "ok", True
      print(f"skip  {p.name} (finished: eval/step_{p.num_steps}.json exists)", flush=True)
    else:
      todo.append(p)
  on_change()

  running: list[tuple[Point, subprocess.Popen, Any, int, float]] = []
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  done_count = len(points) - len(todo)

  def start(p: Point):
    os.makedirs(p.workdir, exist_ok=True)
    cmd = point_command(launcher, config_path, p.workdir,
                        effective_overrides(p.overrides, command_line))
    log = open(os.path.join(p.workdir, LOG_NAME), "a")
    offset = log.tell()
    log.write(f"=== sweep point {p.name} started {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
              f"=== {' '.join(cmd)}\n")
    log.flush()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            stdin=subprocess.DEVNULL)
    p.status = "running"
    print(f"start {p.name}", flush=True)
    running.append((p, proc, log, offset, time.time()))

  def finish(entry):
    nonlocal done_count
    p, proc, log, offset, t0 = entry
    log.close()
    p.seconds = round(time.time() - t0, 1)
    with open(os.path.join(p.workdir, LOG_NAME), errors="replace") as f:
      f.seek(offset)
      text = f.read()
    if proc.returncode == 0 and is_finished(p.workdir, p.num_steps):
      p.status, p.error = "ok", None
    elif proc.returncode == 0:
      p.status = "failed"
      p.error = f"exited without writing eval/step_{p.num_steps}.json"
    else:
      p.status, p.error = "failed", error_line(text, proc.returncode)
    _append_launch(p, t0, proc.returncode)
    done_count += 1
    detail = "" if p.status == "ok" else f": {p.error}"
    print(f"[{done_count}/{len(points)}] {p.status} {p.name} ({p.seconds} s){detail}", flush=True)
    on_change()

  # A `kill` (SIGTERM) of the sweep stops its points like Ctrl-C does, rather than leaving them
  # training on without it.
  previous = signal.getsignal(signal.SIGTERM)
  if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _interrupt)
  try:
    queue = list(todo)
    while queue or running:
      while queue and len(running) < parallel:
        start(queue.pop(0))
      time.sleep(poll_seconds)
      for entry in [e for e in running if e[1].poll() is not None]:
        running.remove(entry)
        finish(entry)
  except KeyboardInterrupt:
    for p, proc, log, _, _ in running:
      proc.terminate()
    for p, proc, log, _, t0 in running:
      try:
        proc.wait(timeout=30)
      except subprocess.TimeoutExpired:
        proc.kill()
      log.close()
      p.status, p.error = "interrupted", "re-run the same command to resume"
      _append_launch(p, t0, proc.returncode)
    on_change()
    raise
  finally:
    if threading.current_thread() is threading.main_thread():
      signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
  raise KeyboardInterrupt(f"signal {signum}")


def run_sweep(config_path: str, config, command_line: Mapping[str, Any], root: str,
              launcher: str, parallel: int = 1, poll_seconds: float = 0.5) -> dict:
  """Runs every point of the file's sweep() under root, `parallel` at a time; returns the summary.

  config: the parsed config (with the command-line overrides applied); command_line: those
  overrides as a flat dict. Raises ValueError when the sweep itself is misused.
  """
  if parallel < 1:
    raise ValueError(f"--parallel must be at least 1, got {parallel}")
  command_line = dict(command_line)
  raw = load_points(config_path)
  module = _load_module(config_path.partition(":")[0]) if any(ARG in p for p in raw) else None

  def point_config(p):  # a point with its own arg has its own base config (its step count)
    if ARG not in p:
      return config
    return module.get_config(point_config_path(config_path, p).partition(":")[2])

  points = [Point(i, p, root, _effective_num_steps(p, command_line, point_config(p)))
            for i, p in enumerate(raw)]
  masked = sorted({k for p in raw for k in p if k in command_line})
  workdir_lib.check_folder_kind(root, "a sweep", "give the sweep a new --workdir")
  os.makedirs(root, exist_ok=True)
  print(f"sweep: {len(points)} points of {config_path} into {root}, {parallel} at a time",
        flush=True)
  if masked:
    print(f"sweep: the command line sets {', '.join(masked)} for every point, over the points' "
          "own values", flush=True)

  run_points(points, config_path, command_line, launcher, parallel,
             lambda: write_summary(root, config_path, command_line, points), poll_seconds)
  summary = write_summary(root, config_path, command_line, points)
  c = summary["counts"]
  print(f"sweep: {c['ok']} ok, {c['failed']} failed; wrote {os.path.join(root, 'summary.md')} "
        "and summary.json", flush=True)
  return summary


def main(config_flag, workdir: str | None, parallel: int, launcher: str) -> dict:
  """launch.py --sweep: reads the config flag's file name and overrides, then runs the sweep."""
  from ml_collections import config_flags
  config_path = config_flags.get_config_filename(config_flag)
  command_line = config_flags.get_override_values(config_flag)
  workdir = workdir or default_workdir(config_flag)
  return run_sweep(config_path, config_flag.value, command_line, workdir, launcher, parallel)
