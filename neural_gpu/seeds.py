"""Seed studies: one experiment trained and evaluated on many seeds, and its per-seed table.

  python launch.py --config=experiments/badd_cpu.py --seeds=0-9 --parallel=2 --workdir=runs/badd_seeds

is a sweep over `seed` (neural_gpu/sweep.py runs it): seed N trains in DIR/seed_<N>/ as its own
launch.py process, --config.* overrides apply to every seed, a seed whose
eval/step_<num_steps>.json exists is skipped and an unfinished one resumes from its checkpoint.
After every seed that ends, DIR/seeds.md and DIR/seeds.json hold one row per seed:

- steps: the last step logged in metrics.jsonl, of the config's train.num_steps;
- learned at: the first logged step whose training seq_err is 0 (the error on that step's
  training batches, at the curriculum's lengths then), '-' if none;
- L=<length>: sequence error / symbol error at each evaluated length (the config's eval.lengths,
  e.g. 1x, 10x, 100x the training length) from the seed's final eval report
  (eval/step_<num_steps>.json; an unfinished seed shows its latest report and says so), then
  the hard sets (eval.hard_kinds, e.g. carry, propagate, zeros) where the reports have them;
- wall: the seconds of all its launch.py processes together (launches.jsonl: training,
  compilation and evaluation).

and a summary: how many seeds have 0 sequence errors at each length. `python -m
neural_gpu.results` builds RESULTS.md from these folders. This module never imports JAX.
"""

import glob
import json
import os
import re
import shlex
from typing import Any, Mapping, Sequence

from neural_gpu import sweep
from neural_gpu import workdir as workdir_lib

STUDY_NAME = workdir_lib.SEED_STUDY
TABLE_NAME = "seeds.md"
MAX_SEEDS = 10_000
# Overrides that may change between runs of a study in the same folder: they extend the runs or
# change what is measured and saved from here on (evaluations not yet made, checkpoint
# cadence), not how any seed trains, so the seeds stay comparable.
REVISABLE = ("train.num_steps", "eval.", "checkpoint.")


def _revisable(key: str) -> bool:
  return any(key == r or r.endswith(".") and key.startswith(r) for r in REVISABLE)


def parse_seeds(spec: str) -> list[int]:
  """'0-9' -> [0, ..., 9]; '0,3,5' -> [0, 3, 5]; '0-2,7' -> [0, 1, 2, 7].

  Raises ValueError (one line saying what a valid spec looks like) for anything else: an empty
  spec or part, a negative or non-integer seed, a range whose end is below its start, a seed
  given twice, or more than MAX_SEEDS seeds.
  """
  seeds: list[int] = []
  for part in str(spec).split(","):
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
    if not match:
      raise ValueError(f"bad --seeds={spec!r}: give seeds as a range 0-9, a list 0,3,5 or both "
                       "(0-2,7); seeds are integers >= 0")
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) is not None else low
    if high < low:
      raise ValueError(f"bad --seeds={spec!r}: the range {low}-{high} ends below its start")
    if len(seeds) + high - low + 1 > MAX_SEEDS:
      raise ValueError(f"bad --seeds={spec!r}: more than {MAX_SEEDS} seeds")
    seeds += range(low, high + 1)
  repeated = sorted({s for s in seeds if seeds.count(s) > 1})
  if repeated:
    raise ValueError(f"bad --seeds={spec!r}: seed {repeated[0]} is given twice")
  return seeds


def seed_dir(root: str, seed: int) -> str:
  return os.path.join(root, f"seed_{seed}")


# -- reading a seed's folder -------------------------------------------------------------------
def seed_row(workdir: str, seed: int, num_steps: int, live: sweep.Point | None = None) -> dict:
  """What one seed's folder says: status, steps, steps to learn, eval errors and wall time.

  live: the sweep's Point while the study runs (its status is newer than the folder's).
  """
  metrics = sweep.read_jsonl(workdir_lib.metrics_path(workdir))
  launches = sweep.read_jsonl(os.path.join(workdir, sweep.LAUNCHES_NAME))
  learned = next((int(m["step"]) for m in metrics if m.get("seq_err") == 0.0), None)
  final = sweep.read_json(workdir_lib.eval_report_path(workdir, num_steps))
  report = final or sweep._latest_eval(workdir)
  error = None
  if final is not None:
    status = "ok"
  elif live is not None and live.status in ("running", "failed"):
    status, error = live.status, live.error
  elif (launches and launches[-1].get("status") == "failed"
        and not str(launches[-1].get("error")).startswith("interrupted")):  # older records
    status, error = "failed", launches[-1].get("error")
  elif not metrics and not launches:
    status = "pending"
  else:  # also a run stopped by Ctrl-C or kill ("interrupted"): the same command resumes it
    status = "unfinished"
  seconds = sum(float(l.get("seconds") or 0.0) for l in launches)
  history = [{"step": step, "eval": _report_errors(r)} for step in sweep._eval_steps(workdir)
             if (r := sweep.read_json(workdir_lib.eval_report_path(workdir, step))) is not None]
  return {"seed": seed, "workdir": workdir, "status": status, "error": error,
          "num_steps": num_steps, "steps": int(metrics[-1]["step"]) if metrics else 0,
          "learned_at": learned, "eval_step": report.get("step") if report else None,
          "train_max_length": report.get("train_max_length") if report else None,
          "eval": _report_errors(report or {}), "history": history,
          "seconds": round(seconds, 1) if launches else None}


def _report_errors(report: dict) -> dict:
  """An eval report's errors keyed by column: "<length>", "<hard kind>:<length>", and with
  Monte Carlo dropout over K passes "mcK:<length>" and "<hard kind> mcK:<length>"."""
  evals = {str(r["length"]): _errors(r) for r in report.get("results", [])}
  evals.update({f"{r['kind']}:{r['length']}": _errors(r) for r in report.get("hard", [])})
  mc = f"mc{report.get('mc_dropout_samples')}"
  evals.update({f"{mc}:{r['length']}": _errors(r) for r in report.get("mc_results", [])})
  evals.update({f"{r['kind']} {mc}:{r['length']}": _errors(r) for r in report.get("mc_hard", [])})
  return evals


def _errors(r: dict) -> dict:
  if "not_applicable" in r:
    return {"not_applicable": r["not_applicable"]}
  return {"sequence_error": r["sequence_error"], "symbol_error": r["symbol_error"],
          "num_examples": r["num_examples"]}


# -- the table -----------------------------------------------------------------------------------
def _columns(rows: list[dict], lengths: Sequence[int]) -> list[str]:
  """Eval columns: the config's lengths and any other length a report has, then Monte Carlo
  dropout ones (mcK:length), the hard sets (kind:length) and theirs, each by kind, length."""
  plain = sorted({int(l) for l in lengths} | {int(k) for r in rows for k in r["eval"]
                                              if ":" not in k})
  hard = sorted({tuple(k.split(":")) for r in rows for k in r["eval"] if ":" in k},
                key=lambda kl: (not kl[0].startswith("mc"), " mc" in kl[0], kl[0], int(kl[1])))
  return [str(l) for l in plain] + [f"{kind}:{l}" for kind, l in hard]


def _number(x: float) -> str:
  return "0" if x == 0 else f"{x:.3g}"


def _cell(e: dict | None) -> str:
  if e is None:
    return "-"
  if "not_applicable" in e:
    return "n/a"
  return f"{_number(e['sequence_error'])} / {_number(e['symbol_error'])}"


def _header(column: str, rows: list[dict]) -> str:
  counts = {r["eval"][column]["num_examples"] for r in rows
            if "num_examples" in r["eval"].get(column, {})}
  kind, _, length = column.rpartition(":")
  name = f"{kind} L={length}" if kind else f"L={length}"
  return f"{name} ({counts.pop()} ex.)" if len(counts) == 1 else name


def summary_counts(rows: list[dict], columns: list[str]) -> dict:
  """Per eval column: how many seeds' final reports have 0 sequence errors there."""
  return {c: sum(r["status"] == "ok" and r["eval"].get(c, {}).get("sequence_error") == 0.0
                 for r in rows) for c in columns}


def format_table(rows: list[dict], lengths: Sequence[int]) -> list[str]:
  """The per-seed markdown table, a line on the columns, and the summary line."""
  columns = _columns(rows, lengths)
  header = (["seed", "status", "steps", "learned at"] + [_header(c, rows) for c in columns]
            + ["wall (min)"])
  out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for r in rows:
    status = r["status"]
    if r["error"]:
      status += ": " + str(r["error"])[:160].replace("|", "\\|")
    if r["status"] != "ok" and r["eval_step"] is not None:
      status += f" (eval at step {r['eval_step']})"
    cells = [str(r["seed"]), status, f"{r['steps']}/{r['num_steps']}",
             "-" if r["learned_at"] is None else str(r["learned_at"])]
    cells += [_cell(r["eval"].get(c)) for c in columns]
    cells.append("-" if r["seconds"] is None else f"{r['seconds'] / 60:.1f}")
    out.append("| " + " | ".join(cells) + " |")
  counts = summary_counts(rows, columns)
  states = {s: sum(r["status"] == s for r in rows)
            for s in ("ok", "failed", "unfinished", "running", "pending")}
  done = ", ".join(f"{n} {s}" for s, n in states.items() if n)
  out += ["", "Cells: sequence error / symbol error (fractions) from each seed's final eval "
          "report; learned at: first logged step with training seq_err 0; wall: all of the "
          "seed's launch.py processes (compilation and evaluation included).", "",
          f"**Seeds with 0 sequence errors** ({len(rows)} seeds: {done}): "
          + "; ".join(f"{_header(c, rows).split(' (')[0]}: {counts[c]} of {len(rows)}"
                      for c in columns) + "."]
  return out


def format_history(rows: list[dict], lengths: Sequence[int]) -> list[str]:
  """Every evaluation each seed has (eval/step_<N>.json, e.g. milestones such as 2k, 5k, 10k
  and 20k steps), a markdown table of seed, step and the errors; [] when no seed has more than
  its final one."""
  if not any(len(r.get("history", ())) > 1 for r in rows):
    return []
  evaluated = [{"eval": h["eval"]} for r in rows for h in r["history"]]
  columns = _columns(evaluated, lengths)
  header = ["seed", "step"] + [_header(c, evaluated) for c in columns]
  out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for r in rows:
    for h in r["history"]:
      out.append("| " + " | ".join([str(r["seed"]), str(h["step"])]
                                   + [_cell(h["eval"].get(c)) for c in columns]) + " |")
  return out


# -- the study -----------------------------------------------------------------------------------
def study_record(root: str, command: str, config_path: str, command_line: Mapping[str, Any],
                 seeds: Sequence[int], num_steps: int, lengths: Sequence[int],
                 points: Mapping[int, sweep.Point] | None = None) -> dict:
  """Reads every seed's folder (the study's seeds and any other seed_<N>/ under root)."""
  found = [int(m.group(1)) for name in (os.listdir(root) if os.path.isdir(root) else [])
           if (m := re.fullmatch(r"seed_(\d+)", name))]
  all_seeds = sorted(set(seeds) | set(found))
  points = points or {}
  rows = [seed_row(seed_dir(root, s), s, num_steps, points.get(s)) for s in all_seeds]
  return {"command": command, "config": config_path,
          "command_line_overrides": dict(command_line), "seeds": list(seeds),
          "num_steps": num_steps, "lengths": [int(l) for l in lengths], "rows": rows}


def write_study(root: str, record: dict) -> None:
  """DIR/seeds.json (the record) and DIR/seeds.md (its table)."""
  workdir_lib.write_json(os.path.join(root, STUDY_NAME), record)
  lines = [f"# Seed study: {record['config']}", "", "```", record["command"], "```", ""]
  lines += format_table(record["rows"], record["lengths"])
  history = format_history(record["rows"], record["lengths"])
  if history:
    lines += ["", "## Every evaluation, by step", ""] + history
  with open(os.path.join(root, TABLE_NAME), "w") as f:
    f.write("\n".join(lines) + "\n")


def _resolved(config_path: str) -> str:
  path, sep, arg = config_path.partition(":")
  return os.path.realpath(path) + sep + arg


def check_folder(root: str, config_path: str, command_line: Mapping[str, Any],
                 num_steps: int | None = None) -> None:
  """A folder holding a study of another config (file or overrides other than REVISABLE ones)
  is refused: its seeds' rows would not be comparable. A study none of whose seeds got as far
  as writing its config.json (every one refused at the start) holds nothing and may be
  replaced. Raises ValueError."""
  old = sweep.read_json(os.path.join(root, STUDY_NAME))
  if old is None or not glob.glob(os.path.join(glob.escape(root), "seed_*", workdir_lib.CONFIG)):
    return
  same = lambda o: {k: v for k, v in o.items() if not _revisable(k)}
  new_overrides = json.loads(json.dumps(dict(command_line)))  # tuples as the saved lists
  if _resolved(old.get("config", "")) != _resolved(config_path) or same(old.get("command_line_overrides", {})) != same(
      new_overrides):
    raise ValueError(f"{root} holds a seed study of `{old.get('command')}`; give the same "
                     "config and overrides (train.num_steps, eval.* and checkpoint.* may change) or "
                     "a new --workdir")
  if num_steps is not None and num_steps < old.get("num_steps", 0):
    raise ValueError(f"{root} holds a seed study extended to {old['num_steps']} steps; give "
                     f"--config.train.num_steps={old['num_steps']} or more (a study is extended, "
                     "not cut back: evaluate earlier checkpoints with --mode=eval --step=N)")


def run_study(config_path: str, config, command_line: Mapping[str, Any], seeds: Sequence[int],
              root: str, launcher: str, parallel: int = 1, command: str = "",
              poll_seconds: float = 0.5) -> dict:
  """Trains and evaluates `config_path` once per seed under root; returns the study record.

  config: the parsed config with the command-line overrides (command_line, a flat dict of
  dotted keys) applied. Raises ValueError, before anything is written, on misuse.
  """
  if parallel < 1:
    raise ValueError(f"--parallel must be at least 1, got {parallel}")
  if "seed" in command_line:
    raise ValueError("--seeds sets config.seed for every run; drop --config.seed")
  command_line = dict(command_line)
  workdir_lib.check_counts(config)
  workdir_lib.check_folder_kind(root, "a seed study", "give the study a new --workdir")
  num_steps = sweep._effective_num_steps({}, command_line, config)
  check_folder(root, config_path, command_line, num_steps)
  lengths = list(config.eval.lengths)
  points = {s: sweep.Point(s, {"seed": s}, root, num_steps, name=f"seed_{s}") for s in seeds}
  command = command or shlex.join(["python", "launch.py", f"--config={config_path}",
                                   f"--seeds={','.join(map(str, seeds))}", f"--workdir={root}"])

  def write() -> dict:
    record = study_record(root, command, config_path, command_line, seeds, num_steps, lengths,
                          points)
    write_study(root, record)
    return record

  os.makedirs(root, exist_ok=True)
  print(f"seeds: {len(seeds)} seeds of {config_path} into {root}, {parallel} at a time",
        flush=True)
  sweep.run_points(list(points.values()), config_path, command_line, launcher, parallel, write,
                   poll_seconds)
  record = write()
  ok = sum(r["status"] == "ok" for r in record["rows"])
  print(f"seeds: {ok} of {len(record['rows'])} finished; wrote "
        f"{os.path.join(root, TABLE_NAME)} and {STUDY_NAME}", flush=True)
  return record


def main(config_flag, spec: str, workdir: str | None, parallel: int, launcher: str,
         command: str) -> dict:
  """launch.py --seeds: parses the spec, the config flag's file name and overrides, then runs."""
  from ml_collections import config_flags
  seeds = parse_seeds(spec)
  config_path = config_flags.get_config_filename(config_flag)
  command_line = config_flags.get_override_values(config_flag)
  workdir = workdir or sweep.default_workdir(config_flag, "_seeds")
  return run_study(config_path, config_flag.value, command_line, seeds, workdir, launcher,
                   parallel, command)
