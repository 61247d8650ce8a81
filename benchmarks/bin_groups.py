"""Bin grouping for the all-bins DNGPU step (issue 17), measured; not built into the trainer.

  cd <repo root> && nice -n 10 python benchmarks/bin_groups.py --nmaps=24
  python benchmarks/bin_groups.py --nmaps=24 --variants=per_bin,g6,g3,per_bin@u2

The reference-protocol step (experiments/base.py, model dngpu: 9 mixed-length bins of widths
8..41 x 32 rows, `bin_steps=True`) calls the model once per bin: 9 time loops. A grouping runs
several bins as ONE model call: their rows padded to the group's widest width and stacked on
the batch axis, every example still running its own bin's width in steps (the loop freezes it
once t >= steps[b]), each bin's loss taken over its own rows and width, the mean over bins.
The arithmetic per example is the same (cells beyond `lengths` are 0 either way), so the loss
and gradients match the per-bin ones up to summation order (printed; < 1e-5 relative).

Variants: `per_bin` (as the trainer does), `gK` (the contiguous grouping into K groups with the
fewest cell-iterations, GROUPINGS), either with `@uN` (`lax.scan(unroll=N)` for the loops).
Timed: the jit'd value_and_grad of the mean over bins of the loss (dropout 0; `--saturation`
adds the saturation penalty with that weight, the group's one cost for a grouped call, so then
only the task-loss part is comparable), its trace and compile seconds, then `--rounds` rounds
with every variant once (order rotating), wall and process CPU medians, and the median per-round
ratio to the first variant. `work` is the variant's cell-iterations (rows x width x loop
iterations, summed over calls) over the per-bin step's.
"""

import argparse
import contextlib
import functools
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

# Bin indices into the widths (8, 12, 16, 20, 25, 28, 31, 36, 41); for each K the contiguous
# partition into K groups with the fewest cell-iterations (sum of rows * width^2 per group).
GROUPINGS = {
    "g1": [[0, 1, 2, 3, 4, 5, 6, 7, 8]],
    "g2": [[0, 1, 2, 3, 4, 5], [6, 7, 8]],
    "g3": [[0, 1, 2, 3], [4, 5, 6], [7, 8]],
    "g4": [[0, 1, 2], [3, 4], [5, 6], [7, 8]],
    "g5": [[0, 1, 2], [3, 4], [5, 6], [7], [8]],
    "g6": [[0, 1], [2, 3], [4, 5], [6], [7], [8]],
    "g8": [[0, 1], [2], [3], [4], [5], [6], [7], [8]],
}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--task", default="badd")
  p.add_argument("--nmaps", type=int, default=24)
  p.add_argument("--rounds", type=int, default=7)
  p.add_argument("--variants", default="per_bin,g1,g2,g3")
  p.add_argument("--saturation", type=float, default=0.0)
  common.add_process_args(p)
  args = p.parse_args(argv)
  common.setup_process(args)
  import jax
  import jax.numpy as jnp
  from experiments import base
  from neural_gpu import train
  from neural_gpu.models import fast_scan

  config = base.get_config(task=args.task, model="dngpu")
  config.model.update(nmaps=args.nmaps, dropout=0.0, input_dropout=0.0)
  trainer = train.Trainer(config, tempfile.mkdtemp(prefix="bench_bin_groups_"))
  params = trainer.init_state().params
  batches = [tuple(jnp.asarray(a) for a in b) for b in trainer.batches(0, trainer.init_host())]
  widths = [b[0].shape[1] for b in batches]
  rows = [b[0].shape[0] for b in batches]
  model, key = trainer.model, jax.random.key(0)
  loss = lambda logits, y, lengths: train.masked_loss(
      logits, y, lengths, config.train.loss, 0.0, config.train.loss_on_padding)[0]

  @contextlib.contextmanager
  def scan_steps(steps):
    """The model's dngpu_scan runs with these per-example step counts (the model itself sets
    every example's to the call's padded width under bin_steps)."""
    saved = fast_scan.dngpu_scan
    fast_scan.dngpu_scan = lambda spec, w, s, l, _, k: saved(spec, w, s, l, steps, k)
    try:
      yield
    finally:
      fast_scan.dngpu_scan = saved

  def objective(params, groups):
    total = 0.0
    for g, group in enumerate(groups):
      width = max(widths[i] for i in group)
      pad = lambda a: jnp.pad(a, ((0, 0), (0, width - a.shape[1])))
      inputs = jnp.concatenate([pad(batches[i][0]) for i in group])
      lengths = jnp.concatenate([batches[i][2] for i in group])
      steps = jnp.concatenate([jnp.full_like(batches[i][2], widths[i]) for i in group])
      with scan_steps(steps):
        out = model.apply({"params": params}, inputs, lengths, train=True,
                          rngs={"dropout": jax.random.fold_in(key, g)})
      row = 0
      for i in group:
        total += loss(out.logits[row:row + rows[i], :widths[i]], *batches[i][1:]) / len(batches)
        row += rows[i]
      total += args.saturation * out.penalties["saturation"] * len(group) / len(batches)
    return total

  per_bin_work = sum(r * w * w for r, w in zip(rows, widths))
  runs = []
  for name in args.variants.split(","):
    grouping, _, unroll = name.partition("@u")
    groups = [[i] for i in range(len(batches))] if grouping == "per_bin" else GROUPINGS[grouping]
    work = sum(sum(rows[i] for i in g) * max(widths[i] for i in g) ** 2 for g in groups)
    fn = jax.jit(jax.value_and_grad(functools.partial(objective, groups=groups)))
    scan = jax.lax.scan
    t0 = time.perf_counter()
    if unroll:
      jax.lax.scan = functools.partial(scan, unroll=int(unroll))
    try:
      lowered = fn.lower(params)
    finally:
      jax.lax.scan = scan
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    value, grads = jax.block_until_ready(compiled(params))
    runs.append(dict(name=name, compiled=compiled, value=value, grads=grads, lower=t1 - t0,
                     compile=t2 - t1, work=work / per_bin_work, times=[], cpu=[], ratios=[]))
    print(f"{name}: {len(groups)} loops, trace+lower {t1 - t0:.1f} s, compile {t2 - t1:.1f} s, "
          f"loss {float(value):.6f}", flush=True)

  ref = runs[0]
  for run in runs:
    rel = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b))),
                       run["grads"], ref["grads"])
    run["loss_diff"] = abs(float(run["value"] - ref["value"]))
    run["grad_rel_diff"] = max(jax.tree.leaves(rel))

  for rnd in range(args.rounds):
    order = runs[rnd % len(runs):] + runs[:rnd % len(runs)]
    this_round = {}
    for run in order:
      t, c = time.perf_counter(), time.process_time()
      jax.block_until_ready(run["compiled"](params))
      this_round[run["name"]] = time.perf_counter() - t
      run["times"].append(this_round[run["name"]])
      run["cpu"].append(time.process_time() - c)
    for run in runs:
      run["ratios"].append(this_round[run["name"]] / this_round[ref["name"]])

  result = {"benchmark": "bin_groups", "task": args.task, "nmaps": args.nmaps,
            "rounds": args.rounds, "widths": widths, "rows": rows, "variants": []}
  for run in runs:
    row = {"variant": run["name"], "work": round(run["work"], 3),
           "step_ms": round(1e3 * statistics.median(run["times"]), 1),
           "cpu_ms": round(1e3 * statistics.median(run["cpu"]), 1),
           "ratio_to_first": round(statistics.median(run["ratios"]), 3),
           "trace_lower_seconds": round(run["lower"], 2),
           "compile_seconds": round(run["compile"], 2),
           "loss_diff": run["loss_diff"], "grad_rel_diff": run["grad_rel_diff"]}
    result["variants"].append(row)
    print(f"{row['variant']:>12}: work x{row['work']:.3f}  {row['step_ms']:.1f} ms  "
          f"cpu {row['cpu_ms']:.1f} ms  x{row['ratio_to_first']:.3f} of {ref['name']}  "
          f"compile {row['compile_seconds']} s  |dloss| {row['loss_diff']:.1e}  "
          f"grad rel {row['grad_rel_diff']:.1e}", flush=True)
  common.emit(result)


if __name__ == "__main__":
  main()
