"""Length-generalization evaluation: sequence and symbol error at each test length.

Every position of the target counts, PAD included (SPEC 4): a model that writes junk after the
answer is wrong. Each length compiles once: batches of one length all share one shape, and a
partial last batch is sampled full and only its first rows are counted.

The entry point is `evaluate_checkpoint(workdir)`: the saved config, a checkpoint restored by
`restore_checkpoint` (built from the config alone: task, model, optimizer state form; no
trainer), the report written to <workdir>/eval/step_<N>.json.
"""

import functools
import inspect
import json
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neural_gpu import checkpoint as ckpt_lib
from neural_gpu import curriculum as curriculum_lib
from neural_gpu import losses, optimizers, sharding, visualize
from neural_gpu import state as state_lib
from neural_gpu import workdir as workdir_lib
from neural_gpu.input_pipeline import data_seed  # noqa: F401  (re-exported)
from neural_gpu.metrics import Progress
from neural_gpu.models.common import NotApplicable

EVAL_STREAM = 1  # fold_in tag that separates test data from training data (stream 0).
MC_DROPOUT_STREAM = 5  # fold_in tag of the Monte Carlo dropout masks at evaluation
MAX_CELLS_PER_BATCH = 1 << 16  # batch * length bound: long lengths go in small batches
# jax.default_matmul_precision's names for the precision of float32 matmuls and convolutions
# (JAX 0.10) that XLA:CPU also compiles; XLA:CPU computes every one of them in float32.
# "highest" (= "float32") is float32 on every backend; what "high" (= "tensorfloat32") and
# "default" (= "bfloat16": TPU's meaning; XLA's default, the same as not setting one) mean on a
# GPU is XLA's choice (TF32 tensor cores on NVIDIA Ampere and later, JAX issues 12008, 18934);
# "BF16_BF16_F32" asks for bfloat16 products with float32 sums (a jax.lax.DotAlgorithmPreset).
# benchmarks/gpu_session.py measures each one's error on the GPU it runs on.
MATMUL_PRECISIONS = ("highest", "float32", "high", "tensorfloat32", "default", "bfloat16",
                     "BF16_BF16_F32")


def check_mc_dropout(model, mc_samples: int) -> None:
  """ValueError (one line) unless `model` can run Monte Carlo dropout when mc_samples > 0."""
  if mc_samples < 0:
    raise ValueError(f"eval.mc_dropout_samples must be >= 0, got {mc_samples}")
  if not mc_samples:
    return
  if "mc_dropout" not in inspect.signature(type(model).__call__).parameters:
    raise ValueError(f"eval.mc_dropout_samples={mc_samples} needs a model with candidate "
                     f"dropout (dngpu); {type(model).__name__} has none: set it to 0")
  if not (getattr(model, "dropout", 0.0) or getattr(model, "zoneout", 0.0)):
    raise ValueError(f"eval.mc_dropout_samples={mc_samples}: the model was trained without "
                     "dropout or zoneout (model.dropout=0, model.zoneout=0), so there is "
                     "nothing to sample; set it to 0")


def check_matmul_precision(precision: str, field: str = "eval.matmul_precision") -> None:
  """ValueError (one line, naming `field` and the valid values) unless `precision` is one of
  MATMUL_PRECISIONS."""
  if precision not in MATMUL_PRECISIONS:
    raise ValueError(f"{field}={precision!r} is not a matmul precision; valid: "
                     f"{', '.join(MATMUL_PRECISIONS)}")


def matmul_precision_of(config, override: str | None = None) -> str:
  """The evaluation's matmul precision: `override` (e.g. launch.py --matmul_precision) or the
  config's eval.matmul_precision; ValueError (check_matmul_precision) if it is not a valid one."""
  precision = config.eval.matmul_precision if override is None else override
  check_matmul_precision(precision, "eval.matmul_precision" if override is None else
                         "--matmul_precision")
  return precision


def make_error_fn(model, out_sharding=None, mc_samples: int = 0,
                  matmul_precision: str = "highest"):
  """jit'd (variables, inputs, targets, lengths, key=None) -> per-example (any wrong?, wrong count).

  inputs, targets (B, L) int32, lengths (B,) int32; returns bool (B,) and int32 (B,), placed by
  out_sharding (sharding.DataParallel.replicated, so every host can read them; None: XLA's
  choice).

  mc_samples > 0: Monte Carlo dropout (Gal & Ghahramani 2016). The prediction is the argmax of
  the mean softmax over that many passes with the candidate's dropout and zoneout sampled;
  example b's pass i draws its masks from fold_in(fold_in(key, rows[b]), i), rows (B,) int32
  being the examples' indices in the test stream, so that its masks do not depend on the batch
  it is in (nor on the device count). A model trained with heavy dropout (the DNGPU reference's
  0.5 for badd) can compute a rule that its deterministic pass (dropout off, the usual
  inference) does not: see RESULTS.md. 0: the deterministic pass.

  matmul_precision: the model's float32 matmuls and convolutions are traced under
  jax.default_matmul_precision(matmul_precision), so the compiled program carries it
  (MATMUL_PRECISIONS; "highest": float32 on every backend). Raises ValueError
  (check_mc_dropout, check_matmul_precision).
  """
  check_mc_dropout(model, mc_samples)
  check_matmul_precision(matmul_precision)

  def probabilities(variables, inputs, lengths, keys, i):
    def one(x, length, k):  # one example, with its own masks
      return model.apply(variables, x[None], length[None], train=False, mc_dropout=True,
                         rngs={"dropout": jax.random.fold_in(k, i)}).logits[0]
    return jax.nn.softmax(jax.vmap(one)(inputs, lengths, keys))

  @functools.partial(jax.jit, out_shardings=out_sharding)
  def errors(variables, inputs, targets, lengths, key=None, rows=None):
    with jax.default_matmul_precision(matmul_precision):  # read as each dot is traced
      if mc_samples:  # argmax of the summed probabilities = argmax of their mean
        keys = jax.vmap(lambda r: jax.random.fold_in(key, r))(rows)
        scores = jax.lax.fori_loop(
            1, mc_samples,
            lambda i, total: total + probabilities(variables, inputs, lengths, keys, i),
            probabilities(variables, inputs, lengths, keys, 0))
      else:
        scores = model.apply(variables, inputs, lengths, train=False).logits
    real = jnp.arange(inputs.shape[1])[None, :] < lengths[:, None]
    wrong = losses.wrong_positions(scores, targets, real)
    return jnp.any(wrong, axis=1), jnp.sum(wrong, axis=1)

  return errors


def count_errors(error_fn, variables, inputs, targets, lengths, dp=None, min_rows: int = 0,
                 key=None, rows=None):
  """error_fn on one batch, its examples split over dp's devices (sharding.DataParallel).

  inputs, targets (B, L), lengths (B,) numpy int32. The batch is padded to at least min_rows
  and to a multiple of the device count with copies of its first row, which are dropped from the
  result, so the examples and the counts are those of a 1-device evaluation. key, rows (B,):
  the dropout key and the examples' stream indices of a Monte Carlo dropout error_fn. Returns
  numpy (any wrong? bool (B,), wrong count int (B,)).
  """
  count = len(lengths)
  rows = np.arange(count, dtype=np.int32) if rows is None else np.asarray(rows, np.int32)
  arrays = tuple(np.asarray(a) for a in (inputs, targets, lengths, rows))
  if dp is not None:
    pad = dp.padded_size(max(count, min_rows)) - count
    if pad:
      arrays = tuple(np.concatenate([a, np.repeat(a[:1], pad, axis=0)]) for a in arrays)
    arrays = dp.shard(arrays)
  inputs, targets, lengths, rows = arrays
  any_wrong, num_wrong = jax.device_get(error_fn(variables, inputs, targets, lengths, key,
                                                 rows if key is not None else None))
  return np.asarray(any_wrong)[:count], np.asarray(num_wrong)[:count]


def batch_size_for(length: int, num_examples: int) -> int:
  return max(1, min(num_examples, 64, MAX_CELLS_PER_BATCH // length))


def config_count(config, length: int) -> int:
  """The number of test examples the run's config asks for at `length`: eval.num_examples, one
  count for every length or one per eval.lengths entry; at a length the config does not list,
  its largest count."""
  counts = config.eval.num_examples
  if np.isscalar(counts):
    return int(counts)
  counts, lengths = list(counts), list(config.eval.lengths)
  if length in lengths and len(counts) == len(lengths):
    return int(counts[lengths.index(length)])
  return int(max(counts))


def check_request(task, lengths, num_examples, kinds=()) -> list[int]:
  """Validates an evaluation request before any work; returns the example count per length.

  num_examples: one int for every length (also as a 1-tuple: --config.eval.num_examples=64
  parses to (64,)), or one int per length. Raises ValueError naming what to change.
  """
  counts = [num_examples] * len(lengths) if np.isscalar(num_examples) else list(num_examples)
  if len(counts) == 1:
    counts = counts * len(lengths)
  if len(counts) != len(lengths):
    raise ValueError(f"num_examples has {len(counts)} entries for {len(lengths)} lengths; give "
                     "one count for every length, or one per length")
  if min(counts, default=1) < 1:
    raise ValueError(f"num_examples must be >= 1 at every length, got {counts}")
  repeated = sorted({l for l in lengths if list(lengths).count(l) > 1})
  if repeated:
    raise ValueError(f"lengths {list(lengths)} repeat {', '.join(map(str, repeated))}; give "
                     "each length once")
  for kind in kinds:
    if kind not in task.hard_kinds:
      raise ValueError(f"{task.name} has no hard test set {kind!r}; valid: "
                       f"{', '.join(task.hard_kinds) or 'none'}")
  for length in lengths:
    if not task.is_valid_length(length):
      valid = task.valid_lengths(length)[-3:]
      upto = f" (valid up to it: ...{valid})" if valid else ""
      raise ValueError(f"cannot evaluate {task.name} at length {length}: {task.name} needs "
                       f"{task.length_rule()}{upto}")
  return counts


def eval_batch(task, seed: int, stream: int, length: int, index: int, batch: int,
               kind: str | None = None):
  """Batch `index` (of `batch` examples) of the test stream at `length`: random inputs, or the
  hard set `kind`. A tasks.base.Batch of int32 (batch, length) arrays."""
  if kind is None:
    return task.sample(data_seed(seed, stream, length, index), batch, length)
  kind_id = 1 + task.hard_kinds.index(kind)
  return task.sample_hard(data_seed(seed, stream, length, index, kind_id), batch, length, kind)


def evaluate_lengths(model, variables, task, lengths, num_examples, seed: int,
                     error_fn=None, progress: bool = True, stream: int = EVAL_STREAM,
                     kind: str | None = None, dp=None, mc_samples: int = 0) -> list[dict]:
  """Returns one result dict per length, in the order given.

  num_examples: an int for every length, or one int per length.
  kind: one of task.hard_kinds to test on that hard set (SPEC 2, EXT) instead of random inputs.
  A model that cannot run at a length (e.g. an MLP built for a fixed width) gets
  {"length": L, "not_applicable": reason} instead of made-up numbers.
  dp: a sharding.DataParallel to split the examples over its devices (count_errors): each call
  runs up to one batch of batch_size_for's size per device (the 1-device memory bound), made of
  consecutive batches as one device draws them, so the examples, and the results, do not depend
  on the device count.
  mc_samples: Monte Carlo dropout passes (make_error_fn; error_fn, if given, must be made with
  the same count); each example's masks come from the seed, the length and its index, so they
  do not depend on the batch size or the device count either.
  """
  counts = check_request(task, lengths, num_examples, [kind] if kind else [])
  error_fn = error_fn or make_error_fn(model, mc_samples=mc_samples)
  kind_id = 0 if kind is None else 1 + task.hard_kinds.index(kind)
  results = []
  for length, count in zip(lengths, counts):
    batch = batch_size_for(length, count)
    num_batches = -(-count // batch)
    group = 1 if dp is None else min(dp.num_devices, num_batches)  # batches per call
    label = f"eval {kind + ' ' if kind else ''}L={length} "
    bar = Progress(num_batches, label=label) if progress else None
    seq_wrong = sym_wrong = 0
    mc_key = (jax.random.wrap_key_data(np.asarray(  # example i's masks: fold_in(mc_key, i)
        data_seed(seed, MC_DROPOUT_STREAM, length, kind_id), np.uint32)) if mc_samples else None)
    try:
      for first in range(0, num_batches, group):
        parts = [eval_batch(task, seed, stream, length, i, batch, kind)
                 for i in range(first, min(first + group, num_batches))]
        take = min(len(parts) * batch, count - first * batch)  # rows past `count` do not count
        lens = np.full((len(parts) * batch,), length, np.int32)
        any_wrong, num_wrong = count_errors(  # min_rows: one shape, so one compile per length
            error_fn, variables, np.concatenate([p.inputs for p in parts]),
            np.concatenate([p.targets for p in parts]), lens, dp, min_rows=group * batch,
            key=mc_key, rows=first * batch + np.arange(len(lens)))
        seq_wrong += int(any_wrong[:take].sum())
        sym_wrong += int(num_wrong[:take].sum())
        if bar:
          bar.update(first + len(parts), seq_err=seq_wrong / (first * batch + take))
    except NotApplicable as e:
      results.append({"length": length, "not_applicable": str(e)})
      continue
    finally:
      if bar:
        bar.close()
    results.append({"length": length, "num_examples": count,
                    "sequence_error": seq_wrong / count,
                    "symbol_error": sym_wrong / (count * length)})
  return results


def write_report(workdir: str, report: dict) -> dict:
  """Writes eval/step_<N>.json and a PNG plot of error against length; returns what was written.

  A report already there for that step is merged, not overwritten: a length (or hard set and
  length) measured again is replaced, the others are kept, so evaluating more lengths later
  never loses the earlier ones; Monte Carlo dropout rows of another sample count are replaced
  whole. With several processes only the primary one (index 0) writes.
  """
  if jax.process_index() != 0:
    return report
  path = workdir_lib.eval_report_path(workdir, report["step"])
  os.makedirs(os.path.dirname(path), exist_ok=True)
  try:
    with open(path) as f:
      old = json.load(f)
  except (OSError, ValueError):
    old = {}
  new = report
  if "mc_dropout_samples" in new and old.get("mc_dropout_samples") != new["mc_dropout_samples"]:
    old = {k: v for k, v in old.items() if not k.startswith("mc_")}  # other K: replaced
  report = {**old, **new}
  by_length, by_kind = (lambda r: r["length"]), (lambda r: (r["kind"], r["length"]))
  for name, key in (("results", by_length), ("hard", by_kind), ("mc_results", by_length),
                    ("mc_hard", by_kind)):
    merged = _merge(old.get(name, []), new.get(name, []), key)
    if merged or name == "results":
      report[name] = merged
  workdir_lib.write_json(path, report)
  _plot(report, workdir_lib.eval_report_path(workdir, report["step"], ".png"))
  visualize.write_curves(workdir)  # the training curves, for a reader without TensorBoard
  return report


class Restored(NamedTuple):
  """A checkpoint restored for evaluation: what evaluate_lengths and the tracers need."""
  task: Any
  model: Any
  state: state_lib.TrainState
  step: int
  max_length: int  # the training maximum (the curriculum's), as the report states it
  dp: sharding.DataParallel


def restore_checkpoint(config, workdir: str, step: int | None = None, best: bool = False,
                       dp: sharding.DataParallel | None = None) -> Restored:
  """Checkpoint `step` of <workdir>/checkpoints (latest unless given; with `best`, of
  <workdir>/best, the one early stopping kept), restored into the form the config builds: the
  task, the model and the optimizer (for the state's structure), without a trainer. dp: the
  devices to place the state on (default: the config's train.num_devices). Raises
  workdir.TrainingError when there is no such checkpoint, ValueError on a bad config; writes
  nothing."""
  subdir = workdir_lib.BEST if best else workdir_lib.CHECKPOINTS
  if not ckpt_lib.has_checkpoint(workdir, subdir):
    raise workdir_lib.TrainingError(
        f"no checkpoint in {os.path.join(workdir, subdir)}: train first"
        + (" with train.early_stopping_patience > 0" if best else ""))
  task = state_lib.build_task(config)
  model = state_lib.build_model(config, task)
  max_length = curriculum_lib.get(config.curriculum, task, config.train.max_length).max_length
  dp = dp or sharding.DataParallel.from_config(config, training=False)
  checkpoints = ckpt_lib.Checkpointer(workdir, create=False, subdir=subdir)
  try:
    step = checkpoints.latest_step() if step is None else step
    if step not in checkpoints.all_steps():
      raise workdir_lib.TrainingError(f"no checkpoint for step {step} in "
                                      f"{checkpoints.directory}; available: "
                                      f"{checkpoints.all_steps()}")
    like = dp.replicate(state_lib.init_state(config, model, optimizers.make(config.optimizer),
                                             max_length))
    state, _ = checkpoints.restore(step, like)
  finally:
    checkpoints.close()
  return Restored(task, model, state, int(step), max_length, dp)


def hard_kinds_of(config) -> list[str]:
  """The hard test sets config.eval.hard_kinds names (comma-separated; empty: none)."""
  return [k for k in config.eval.hard_kinds.split(",") if k]


def evaluate_checkpoint(workdir: str, step: int | None = None, lengths=None, num_examples=None,
                        config=None, progress: bool = True, best: bool = False,
                        hard_kinds=None, mc_samples: int | None = None,
                        matmul_precision: str | None = None) -> dict:
  """Evaluates checkpoint `step` of `workdir` (latest unless given; with `best`, the one early
  stopping kept) and writes the report to <workdir>/eval/step_<N>.json (merged with one there).

  config: default the run's config.json. lengths: default config.eval.lengths; num_examples:
  one int, or one per length (default: config_count at each length). hard_kinds (default:
  config.eval.hard_kinds) adds the task's hard test sets at the same lengths, under the
  report's "hard" key. mc_samples (default:
  config.eval.mc_dropout_samples) > 0 evaluates the same examples again with Monte Carlo
  dropout (make_error_fn), under "mc_results" and "mc_hard", with "mc_dropout_samples".
  matmul_precision (default: config.eval.matmul_precision): make_error_fn's, stored as the
  report's "matmul_precision" (that of the latest evaluation merged into it). Returns the report
  {"step", "task", "task_params", "model", "train_max_length", "matmul_precision",
  "results": [per length], "hard"?, ...}. Raises ValueError or workdir.TrainingError (one
  line) before any work on a bad request.
  """
  config = config or workdir_lib.load_config(workdir)
  matmul_precision = matmul_precision_of(config, matmul_precision)
  hard_kinds = hard_kinds_of(config) if hard_kinds is None else hard_kinds
  if mc_samples is None:
    mc_samples = config.eval.mc_dropout_samples
  run = restore_checkpoint(config, workdir, step, best)
  check_mc_dropout(run.model, mc_samples)
  lengths = list(lengths or config.eval.lengths)
  if num_examples is None:
    num_examples = [config_count(config, length) for length in lengths]
  check_request(run.task, lengths, num_examples, hard_kinds)  # before any work
  variables = {"params": run.state.params, **run.state.model_state}
  evaluate = functools.partial(evaluate_lengths, run.model, variables, run.task, lengths,
                               num_examples, config.seed,
                               make_error_fn(run.model, run.dp.replicated,
                                             matmul_precision=matmul_precision),
                               progress, dp=run.dp)
  _, task_params = state_lib.split_name(config.task)
  report = {"step": run.step, "task": config.task.name, "task_params": task_params,
            "model": config.model.name,
            "train_max_length": run.max_length, "matmul_precision": matmul_precision,
            "results": evaluate()}
  if hard_kinds:
    report["hard"] = [{"kind": kind, **r} for kind in hard_kinds for r in evaluate(kind=kind)]
  if mc_samples:
    mc = functools.partial(evaluate_lengths, run.model, variables, run.task, lengths,
                           num_examples, config.seed,
                           make_error_fn(run.model, run.dp.replicated, mc_samples,
                                         matmul_precision), progress,
                           dp=run.dp, mc_samples=mc_samples)
    report.update(mc_dropout_samples=mc_samples, mc_results=mc())
    if hard_kinds:
      report["mc_hard"] = [{"kind": kind, **r} for kind in hard_kinds for r in mc(kind=kind)]
  return write_report(workdir, report)


def _merge(old: list, new: list, key) -> list:
  fresh = {key(r) for r in new}
  return sorted([r for r in old if key(r) not in fresh] + list(new), key=key)


def _plot(report: dict, path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  rows = [r for r in report["results"] if "sequence_error" in r]
  if not rows:
    return
  fig, ax = plt.subplots(figsize=(5, 3.5))
  xs = [r["length"] for r in rows]
  ax.plot(xs, [r["sequence_error"] for r in rows], "o-", label="sequence error")
  ax.plot(xs, [r["symbol_error"] for r in rows], "s--", label="symbol error")
  ax.axvline(report["train_max_length"], color="gray", lw=0.8, ls=":", label="train max length")
  ax.set_xscale("log")
  ax.set_ylim(-0.02, 1.02)
  ax.set_xlabel("length")
  ax.set_ylabel("error")
  ax.set_title(f"{report['model']} on {task_label(report)}, step {report['step']}")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def task_label(report: dict) -> str:
  """'badd', or 'badd (layout=stacked)' when the run's config gave the task parameters: a
  stacked L=21 and a sequential L=21 are different problems."""
  params = report.get("task_params") or {}
  return report["task"] + (f" ({', '.join(f'{k}={v}' for k, v in params.items())})"
                           if params else "")


def _table_row(r: dict, prefix: str = "") -> str:
  if "not_applicable" in r:
    return f"{prefix}{r['length']:>8}  not applicable: {r['not_applicable']}"
  return (f"{prefix}{r['length']:>8} {r['num_examples']:>9} {r['sequence_error']:>9.4f} "
          f"{r['symbol_error']:>10.6f}")


def format_table(report: dict) -> str:
  columns = f"{'length':>8} {'examples':>9} {'seq_err':>9} {'sym_err':>10}"
  lines = [f"{report['model']} on {task_label(report)} at step {report['step']} "
           f"(train.max_length {report['train_max_length']})", columns]
  lines += [_table_row(r) for r in report["results"]]
  if report.get("hard"):
    lines += ["hard test sets:", f"{'kind':>10} {columns}"]
    lines += [_table_row(r, f"{r['kind']:>10} ") for r in report["hard"]]
  if report.get("mc_results"):
    lines += [f"Monte Carlo dropout, mean of {report['mc_dropout_samples']} passes:", columns]
    lines += [_table_row(r) for r in report["mc_results"]]
  if report.get("mc_hard"):
    lines += ["hard test sets, Monte Carlo dropout:", f"{'kind':>10} {columns}"]
    lines += [_table_row(r, f"{r['kind']:>10} ") for r in report["mc_hard"]]
  return "\n".join(lines)
