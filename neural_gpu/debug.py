"""Debugging aids: a finite-difference gradient check for any model (from the lecture notes),
and where a checkpoint's answers go wrong.

  python launch.py --config=experiments/task.py:task=copy,model=gru --mode=gradcheck
  python launch.py --mode=errors --workdir=runs/badd_ref --lengths=41,401 --num_examples=64
"""

import jax
import jax.numpy as jnp
import numpy as np

from neural_gpu import evaluate, optimizers, train
from neural_gpu import state as state_lib
from neural_gpu import workdir as workdir_lib
from neural_gpu.models.common import NotApplicable


def gradient_check(config, length: int = 5, batch_size: int = 2, eps: float = 1e-4,
                   num_directions: int = 4, seed: int = 0) -> dict:
  """Compares autodiff directional derivatives of the training loss with central differences.

  Runs in float64 on a tiny batch of the config's task and model. Returns the largest relative
  error over `num_directions` random directions (below ~1e-5 means the gradients are right).
  """
  task = state_lib.build_task(config)
  model = state_lib.build_model(config, task)
  length = task.nearest_valid_length(task.fixed_length or length)
  data = task.sample(seed, batch_size, length)
  lengths = jnp.full((batch_size,), length, jnp.int32)
  state = state_lib.init_state(config, model, optimizers.make(config.optimizer),
                               config.train.max_length)
  with jax.enable_x64(True):
    params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), state.params)
    model_state = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), state.model_state)

    @jax.jit
    def loss(p):
      out = model.apply({"params": p, **model_state}, data.inputs, lengths, train=False)
      value, _, _ = train.masked_loss(out.logits, data.targets, lengths, config.train.loss)
      return value

    grads = jax.grad(loss)(params)
    worst = 0.0
    for i in range(num_directions):
      leaves, treedef = jax.tree.flatten(params)
      keys = jax.random.split(jax.random.key(seed + i), len(leaves))
      direction = jax.tree.unflatten(
          treedef, [jax.random.normal(k, p.shape, p.dtype) for k, p in zip(keys, leaves)])
      shifted = lambda sign: jax.tree.map(lambda p, d: p + sign * eps * d, params, direction)
      numeric = (loss(shifted(1.0)) - loss(shifted(-1.0))) / (2 * eps)
      analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads),
                                                    jax.tree.leaves(direction)))
      error = abs(float(numeric - analytic)) / max(abs(float(numeric)), abs(float(analytic)), 1e-8)
      worst = max(worst, error)
  return {"model": config.model.name, "task": config.task.name, "length": length,
          "max_relative_error": worst, "ok": bool(worst < 1e-5)}


# Offsets of a wrong symbol from the end of the answer (the example's last non-PAD target: 0),
# negative inside the answer, positive in the PAD after it; inclusive bounds.
OFFSET_BUCKETS = ((-np.inf, -101, "<=-101"), (-100, -11, "-100..-11"), (-10, -1, "-10..-1"),
                  (0, 0, "0"), (1, 10, "1..10"), (11, 100, "11..100"), (101, np.inf, ">=101"))
KINDS = ("digit for digit", "PAD for digit", "digit for PAD")  # what was written for what


def error_positions(workdir: str, step: int | None = None, lengths=None, num_examples=64,
                    best: bool = False, kind: str | None = None,
                    matmul_precision: str | None = None) -> dict:
  """Where a checkpoint's deterministic pass goes wrong, on the evaluation's own test examples
  (the same stream and batches as `--mode=eval`, so the counts add up to its symbol errors).

  For each length: the wrong symbols counted by KINDS ("PAD for digit": PAD written where the
  target has a symbol, "digit" meaning any non-PAD symbol) and by OFFSET_BUCKETS of their
  position from the end of the example's answer. lengths default to the config's eval.lengths;
  kind: one of the task's hard test sets; matmul_precision: as the evaluation's (default: the
  config's eval.matmul_precision). Returns {"step", "results": [{"length", "num_examples",
  "wrong_symbols", "by_kind": {KINDS: int}, "by_offset": {label: int}}]}, or {"length",
  "not_applicable": reason} for a length the model cannot run (e.g. an MLP's other widths).
  Raises ValueError or workdir.TrainingError (one line) on a bad request, before any example
  runs; writes nothing.
  """
  config = workdir_lib.load_config(workdir)
  lengths = list(lengths or config.eval.lengths)
  precision = evaluate.matmul_precision_of(config, matmul_precision)
  run = evaluate.restore_checkpoint(config, workdir, step, best)
  counts = evaluate.check_request(run.task, lengths, num_examples, [kind] if kind else [])
  variables = jax.device_get({"params": run.state.params, **run.state.model_state})

  @jax.jit
  def predict(v, x, n):
    with jax.default_matmul_precision(precision):
      return jnp.argmax(run.model.apply(v, x, n, train=False).logits, -1)

  results = []
  for length, count in zip(lengths, counts):
    try:
      results.append(_error_positions_at(predict, variables, run.task, config.seed, length,
                                         count, kind))
    except NotApplicable as e:
      results.append({"length": length, "not_applicable": str(e)})
  return {"step": run.step, "results": results}


def _error_positions_at(predict, variables, task, seed, length, count, kind) -> dict:
  batch = evaluate.batch_size_for(length, count)
  by_kind = np.zeros(len(KINDS), np.int64)
  by_offset = np.zeros(len(OFFSET_BUCKETS), np.int64)
  upper_bounds = [hi for _, hi, _ in OFFSET_BUCKETS]
  positions = np.arange(length)
  for index in range(-(-count // batch)):
    b = evaluate.eval_batch(task, seed, evaluate.EVAL_STREAM, length, index, batch, kind)
    rows = min(batch, count - index * batch)
    targets = np.asarray(b.targets)[:rows]
    written = np.asarray(predict(variables, b.inputs, np.full((batch,), length, np.int32)))
    written = written[:rows]
    wrong = written != targets
    expected, got = targets > 0, written > 0
    by_kind += [np.sum(wrong & expected & got), np.sum(wrong & expected & ~got),
                np.sum(wrong & ~expected)]
    answer_end = np.max(np.where(expected, positions, -1), axis=1)  # -1: all PAD
    offsets = (positions[None, :] - answer_end[:, None])[wrong]
    # bucket i is the first whose (inclusive) upper bound is >= the offset
    by_offset += np.bincount(np.searchsorted(upper_bounds, offsets, side="left"),
                             minlength=len(OFFSET_BUCKETS))
  return {"length": length, "num_examples": count, "wrong_symbols": int(by_kind.sum()),
          "by_kind": dict(zip(KINDS, map(int, by_kind))),
          "by_offset": {label: int(n) for (_, _, label), n in zip(OFFSET_BUCKETS, by_offset)}}


def format_error_positions(report: dict) -> str:
  """error_positions' result as a table: one row per length."""
  head = ["length", "examples", "wrong"] + list(KINDS) + [l for _, _, l in OFFSET_BUCKETS]
  rows = [[r["length"], "not applicable: " + r["not_applicable"]] if "not_applicable" in r else
          [r["length"], r["num_examples"], r["wrong_symbols"], *r["by_kind"].values(),
           *r["by_offset"].values()] for r in report["results"]]
  lines = [f"wrong symbols at step {report['step']}, by what was written for what, and by "
           "position from the end of the answer (0: its last symbol)",
           " | ".join(head)] + [" | ".join(str(v) for v in row) for row in rows]
  return "\n".join(lines)
