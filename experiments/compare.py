"""Every model on the same tasks, tested far beyond the training length (SPEC 4, 5; CPU scale).

Two uses.

1. A config file for one (model, task) point, arg "model,task":

     python launch.py --config=experiments/compare.py:gru,reverse --workdir=runs/compare/gru_reverse

2. A script that runs the whole grid and writes the comparison table:

     python experiments/compare.py --workdir=runs/compare
     python experiments/compare.py --workdir=runs/compare --models=gru,lstm --tasks=copy --steps=200

   Each point trains in ROOT/<model>_<task>/ as its own `launch.py` process (log in log.txt there),
   resumes from its checkpoints when re-run, and is skipped once its eval/step_<steps>.json holds
   every requested length. After each point ROOT/compare.md and ROOT/compare.json are rewritten:
   sequence and symbol error per model and task at 1x, 10x and 100x the training length. The MLPs
   only exist at their one training length, so they show "n/a" beyond it (SPEC 1: report it, do
   not hide it); "not run" marks a length skipped to save time.

Default scale, picked for 2 shared CPU cores: the whole default grid took 35 minutes there under
a load average of 4 to 6 (docs/compare.md has the command, the table and the timings):
- tasks copy, reverse, dup (binary alphabet), badd, bmul; train length 21 (10-bit operands);
- models neural_gpu (m=24, NGPU curriculum), dngpu (m=48, all bins 7/11/15/21 every step), mlp
  and highway_mlp (fixed length 21), rnn, gru, lstm, highway (hidden 128, read-then-emit);
- batch 32, Adam (DNGPU: AdaMax); steps per model in STEPS (--steps=N sets one count for all);
- test lengths 21, 201 and 2001 (--lengths), with 128, 32 and 4 examples (--examples); the 100x
  length only for models whose evaluation is cheap there (LONG_EVAL_MODELS: the recurrent nets
  are linear in the length, DNGPU is 1-D; the CGRU Neural GPU costs about 1 TFLOP per example at
  2001, a quarter of SPEC 6's figure for 4001, and is not run there unless --long_models names it).
A re-run with new lengths resumes each point in train mode (no new steps) and evaluates again.
These are short runs: a model that fails here may well learn with the paper's budget.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # `python experiments/compare.py` from anywhere
  sys.path.insert(0, REPO)

from experiments import base  # noqa: E402  (needs the repository root on sys.path)

MODELS = ("neural_gpu", "dngpu", "mlp", "highway_mlp", "rnn", "gru", "lstm", "highway")
TASKS = ("copy", "reverse", "dup", "badd", "bmul")
TRAIN_LENGTH = 21
LENGTHS = (21, 201, 2001)  # 1x, 10x, 100x (in operand digits for badd/bmul: 10, 100, 1000)
EXAMPLES = (128, 32, 4)
LONG_EVAL_MODELS = ("dngpu", "mlp", "highway_mlp", "rnn", "gru", "lstm", "highway")
# Training steps per model at the default scale (14 s to 150 s per point on the loaded 2 cores).
STEPS = {"neural_gpu": 400, "dngpu": 300, "mlp": 1000, "highway_mlp": 1000,
         "rnn": 1000, "gru": 1000, "lstm": 1000, "highway": 1000}
LOG_NAME = "log.txt"
TIME_NAME = "compare_seconds.json"  # wall seconds the point's processes took, over all re-runs


def parse_arg(arg):
  model, _, task = (arg or "gru,copy").partition(",")
  if not model or not task:
    raise ValueError(f"compare.py needs the arg 'model,task', e.g. :gru,copy (got {arg!r})")
  return model.strip(), task.strip()


def get_config(arg=None):
  """The config of one point of the grid; arg is 'model,task'."""
  model, task = parse_arg(arg)
  c = base.get_config(task=task, model=model)
  if model == "dngpu":  # docs/compare.md was measured with this protocol (not the reference's)
    base.exact_length_protocol(c)
  c.train.update(num_steps=STEPS.get(model, 1000), batch_size=32, max_length=TRAIN_LENGTH,
                 log_every=25, schedule_every=100)
  # Short runs: decide on the NGPU curriculum every 50 steps; the DNGPU bins up to length 21.
  c.curriculum.update(every_steps=50, bins=(7, 11, 15, 21))
  c.checkpoint.every_steps = 100
  lengths, examples = eval_plan(model, LENGTHS, EXAMPLES, LONG_EVAL_MODELS)
  c.eval.update(lengths=lengths, num_examples=examples)
  return c


def eval_plan(model, lengths, examples, long_models):
  """The test lengths and example counts for `model`: the longest length only for long_models."""
  lengths, examples = list(lengths), list(examples)
  if len(lengths) > 1 and model not in long_models:
    lengths, examples = lengths[:-1], examples[:-1]
  return tuple(lengths), tuple(examples)


# -- the table ----------------------------------------------------------------------------------
def point_name(model, task):
  return f"{model}_{task}"


def read_point(workdir, num_steps):
  """What a point's folder holds: status, steps, final training errors and its eval results."""
  info = {"steps": 0, "num_steps": num_steps, "train": None, "eval_step": None, "results": {}}
  metrics = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(metrics):
    with open(metrics) as f:
      lines = [l for l in f if l.strip()]
    for line in reversed(lines):
      try:
        last = json.loads(line)
      except json.JSONDecodeError:  # a line cut short by a crash
        continue
      info["steps"] = int(last["step"])
      info["train"] = {k: last.get(k) for k in ("seq_err", "sym_err", "loss", "length")}
      info["steps_per_second"] = last.get("steps_per_second")
      break
  timing = os.path.join(workdir, TIME_NAME)
  if os.path.exists(timing):
    with open(timing) as f:
      info["seconds"] = json.load(f)["seconds"]
  path = os.path.join(workdir, "eval", f"step_{num_steps}.json")
  if os.path.exists(path):
    with open(path) as f:
      report = json.load(f)
    info["eval_step"] = report["step"]
    info["results"] = results_by_length(report)
  return info


def results_by_length(report):
  """An eval report's results keyed by length (a string, as JSON keys are), never by list index."""
  out = {}
  for r in report.get("results", []):
    if "not_applicable" in r:
      out[str(r["length"])] = {"not_applicable": r["not_applicable"]}
    else:
      out[str(r["length"])] = {k: r[k] for k in ("sequence_error", "symbol_error", "num_examples")}
  return out


def _error(value):
  if value is None or (isinstance(value, float) and not math.isfinite(value)):
    return str(value)
  return f"{value:.3f}"


def format_cell(result):
  """'seq / sym (n=examples)', 'n/a' for a model that cannot run there, 'not run' if skipped."""
  if result is None:
    return "not run"
  if "not_applicable" in result:
    return "n/a"
  return (f"{_error(result['sequence_error'])} / {_error(result['symbol_error'])}"
          f" (n={result['num_examples']})")


def train_cell(train):
  """The last logged training sequence error, and the length it was at (curricula grow it)."""
  if not train:
    return "-"
  length = train.get("length")
  return _error(train.get("seq_err")) + (f" (L={length:.0f})" if length is not None else "")


def build_summary(points, lengths, train_length, command=None):
  """points: list of dicts {model, task, status, error, seconds, ...read_point()}. Returns the
  JSON-able summary, keyed summary['results'][model][task][str(length)]."""
  results = {}
  for p in points:
    results.setdefault(p["model"], {})[p["task"]] = {
        "status": p["status"], "error": p.get("error"), "seconds": p.get("seconds"),
        "steps": p["steps"], "num_steps": p["num_steps"], "train": p.get("train"),
        "lengths": {str(l): p["results"].get(str(l)) for l in lengths}}
  return {"command": command, "train_length": train_length, "lengths": list(lengths),
          "results": results}


def format_markdown(summary):
  lengths, train_length = summary["lengths"], summary["train_length"]
  # 201 and 2001 are 10x and 100x a length of 21 in operand digits (10 -> 100 -> 1000 bits).
  factor = lambda l: f"{(l - 1) / (train_length - 1):.3g}x" if train_length > 1 else ""
  out = ["# Model comparison: length generalization", ""]
  if summary.get("command"):
    out += [f"Command: `{summary['command']}`", ""]
  out += [f"Trained at length {train_length}; each cell is sequence error / symbol error "
          "(every position counts, PAD included) and the number of test examples. "
          "n/a: the model cannot run at that length by construction (a fixed-size MLP). "
          "not run: skipped to save time.", ""]
  header = (["model", "task", "status", "steps", "time (s)", "last train seq_err"]
            + [f"L={l} ({factor(l)})" for l in lengths])
  out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for model, by_task in summary["results"].items():
    for task, p in by_task.items():
      status = p["status"] + (f": {p['error'][:120]}" if p.get("error") else "")
      train = p.get("train") or {}
      cells = [model, task, status.replace("|", "/"), f"{p['steps']}/{p['num_steps']}",
               "-" if p.get("seconds") is None else f"{p['seconds']:.0f}",
               train_cell(train)]
      cells += [format_cell(p["lengths"].get(str(l))) for l in lengths]
      out.append("| " + " | ".join(cells) + " |")
  # A compact view: sequence error at each length, models by tasks.
  tasks = []
  for by_task in summary["results"].values():
    tasks += [t for t in by_task if t not in tasks]
  for l in lengths:
    out += ["", f"Sequence error at L={l} ({factor(l)}):", "",
            "| model | " + " | ".join(tasks) + " |", "|" + "---|" * (len(tasks) + 1)]
    for model, by_task in summary["results"].items():
      cells = []
      for t in tasks:
        r = by_task.get(t, {}).get("lengths", {}).get(str(l)) if t in by_task else None
        cells.append("n/a" if r and "not_applicable" in r else
                     _error(r["sequence_error"]) if r else "not run")
      out.append(f"| {model} | " + " | ".join(cells) + " |")
  return "\n".join(out) + "\n"


def write_summary(root, summary):
  os.makedirs(root, exist_ok=True)
  for name, text in (("compare.json", json.dumps(summary, indent=1)),
                     ("compare.md", format_markdown(summary))):
    path = os.path.join(root, name)
    with open(path + ".tmp", "w") as f:
      f.write(text)
    os.replace(path + ".tmp", path)


# -- the grid -----------------------------------------------------------------------------------
def point_overrides(args, model):
  lengths, examples = eval_plan(model, args.lengths, args.examples, args.long_models)
  steps = args.steps or STEPS.get(model, 1000)
  return steps, lengths, {"train.num_steps": steps, "train.max_length": args.train_length,
                          "eval.lengths": lengths, "eval.num_examples": examples}


def is_done(workdir, steps, lengths):
  info = read_point(workdir, steps)
  return info["eval_step"] == steps and all(str(l) in info["results"] for l in lengths)


def run_point(args, model, task, workdir, overrides):
  from neural_gpu import sweep  # imports no JAX
  os.makedirs(workdir, exist_ok=True)
  cmd = sweep.point_command(os.path.join(REPO, "launch.py"),
                            f"{os.path.abspath(__file__)}:{model},{task}", workdir, overrides)
  with open(os.path.join(workdir, LOG_NAME), "a") as log:
    offset = log.tell()
    log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
    log.flush()
    proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"))
  with open(os.path.join(workdir, LOG_NAME), errors="replace") as f:
    f.seek(offset)
    text = f.read()
  return None if proc.returncode == 0 else sweep.error_line(text, proc.returncode)


def parse_list(text, kind=str):
  return tuple(kind(x) for x in text.split(",") if x.strip())


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", default=os.path.join("runs", "compare"))
  parser.add_argument("--steps", type=int, default=None,
                      help="training steps for every model (default: STEPS per model)")
  parser.add_argument("--models", type=parse_list, default=MODELS)
  parser.add_argument("--tasks", type=parse_list, default=TASKS)
  parser.add_argument("--train_length", type=int, default=TRAIN_LENGTH)
  parser.add_argument("--lengths", type=lambda s: parse_list(s, int), default=LENGTHS,
                      help="test lengths; the last one only for --long_models")
  parser.add_argument("--examples", type=lambda s: parse_list(s, int), default=EXAMPLES,
                      help="test examples per length")
  parser.add_argument("--long_models", type=parse_list, default=LONG_EVAL_MODELS,
                      help="models tested at the last (longest) length")
  args = parser.parse_args(argv)
  if len(args.examples) != len(args.lengths):
    parser.error(f"--examples has {len(args.examples)} counts for {len(args.lengths)} lengths")
  from neural_gpu import models
  unknown = sorted(set(args.models) - set(models.names()))
  if unknown:
    parser.error(f"unknown model(s) {', '.join(unknown)}; valid: {', '.join(models.names())}")
  root = os.path.abspath(args.workdir)  # the points run with the repository root as cwd
  command = "python experiments/compare.py " + " ".join(argv if argv is not None else sys.argv[1:])
  grid = [(m, t) for m in args.models for t in args.tasks]
  points = []
  for model, task in grid:
    steps, lengths, overrides = point_overrides(args, model)
    workdir = os.path.join(root, point_name(model, task))
    points.append(dict(model=model, task=task, workdir=workdir, overrides=overrides,
                       status="pending", error=None, **{"seconds": None,
                                                        **read_point(workdir, steps)}))

  def summarize():
    write_summary(root, build_summary(points, args.lengths, args.train_length, command.strip()))

  print(f"compare: {len(points)} points into {root}", flush=True)
  for i, p in enumerate(points):
    steps = p["overrides"]["train.num_steps"]
    if is_done(p["workdir"], steps, p["overrides"]["eval.lengths"]):
      p["status"] = "ok"
      print(f"[{i + 1}/{len(points)}] skip {point_name(p['model'], p['task'])} (finished)",
            flush=True)
      continue
    p["status"] = "running"
    summarize()
    t0 = time.time()
    error = run_point(args, p["model"], p["task"], p["workdir"], p["overrides"])
    seconds = round(time.time() - t0 + (p.get("seconds") or 0.0), 1)
    with open(os.path.join(p["workdir"], TIME_NAME), "w") as f:
      json.dump({"seconds": seconds}, f)
    p.update(read_point(p["workdir"], steps))
    p["status"], p["error"] = ("failed", error) if error else ("ok", None)
    print(f"[{i + 1}/{len(points)}] {p['status']} {point_name(p['model'], p['task'])} "
          f"({p['seconds']} s){': ' + error if error else ''}", flush=True)
    summarize()
  summarize()
  print(f"wrote {os.path.join(root, 'compare.md')} and compare.json", flush=True)


if __name__ == "__main__":
  main()
