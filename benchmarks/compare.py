"""A/B comparison of model variants in ONE process, interleaved step by step.

  cd /work/main && PYTHONPATH=. /work/venv/bin/python benchmarks/compare.py \
      --model=neural_gpu --nmaps=24 --length=41 --batch_size=32 \
      --variant=autodiff:loop=autodiff --variant=custom_vjp

Each variant is `label:field=value,field=value`: model fields, `train.field=value` (another
config section), `xla.option=value` (an XLA debug option for that variant's compile only,
e.g. `xla.xla_cpu_experimental_ynn_fusion_type=`), or `loop=autodiff` (the models' time loops
differentiated by plain autodiff through lax.scan, tests/oracles.py). Every variant's
`Trainer.train_step` is compiled first; then each round runs one step of every variant (the
order rotates from round to round), each followed by the roofline matmul. On a machine shared
with other jobs this is the fairest comparison available: all variants see the same load.
Reported per variant: median step seconds, median paired MFU, and the median over rounds of
(step seconds / first variant's step seconds in that round), and the process CPU seconds
(user + sys, all threads) per step, which the other jobs on the machine disturb less than the
wall clock. Last line: one JSON object.
"""

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402
from benchmarks.train_step import set_field  # noqa: E402


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", default="neural_gpu")
  p.add_argument("--task", default="badd")
  p.add_argument("--nmaps", type=int, default=24)
  p.add_argument("--length", type=int, default=41)
  p.add_argument("--batch_size", type=int, default=32)
  p.add_argument("--rounds", type=int, default=7)
  p.add_argument("--curriculum", default="fixed",
                 help="'fixed' (one batch at --length) or 'default' (the model's own, e.g. "
                 "the DNGPU's 9 bins x batch_size)")
  p.add_argument("--variant", action="append", required=True, metavar="LABEL:F=V,F=V")
  common.add_process_args(p)
  args = p.parse_args(argv)
  malloc_tuned = common.setup_process(args)
  import jax
  from experiments import base
  from neural_gpu import train
  from tests import oracles

  runs = []
  for spec in args.variant:
    label, _, fields = spec.partition(":")
    config = base.get_config(task=args.task, model=args.model)
    config.model.nmaps = args.nmaps
    compiler_options, autodiff = {}, False
    for item in filter(None, fields.split(",")):
      if item.startswith("xla."):  # an XLA option for this variant's compile only
        key, value = item[4:].split("=", 1)
        compiler_options[key] = value
      elif item == "loop=autodiff":
        autodiff = True
      else:
        set_field(config, item)
    config.train.batch_size = args.batch_size
    config.train.max_length = args.length
    if args.curriculum == "fixed":
      config.curriculum.name = "fixed"
    trainer = train.Trainer(config, tempfile.mkdtemp(prefix="bench_compare_"))
    state, host = trainer.init_state(), trainer.init_host()
    hyper = trainer.hyper(host)
    batches = trainer.batches(0, host)
    t0 = time.perf_counter()
    with oracles.autodiff_loops() if autodiff else contextlib.nullcontext():
      compiled = trainer.train_step.lower(state, batches, hyper).compile(compiler_options)
    compile_seconds = time.perf_counter() - t0
    state, metrics = compiled(state, batches, hyper)  # warm-up
    jax.block_until_ready(state)
    gflops = common.step_gflops(config.model, batches, trainer.task.vocab_size)
    runs.append(dict(label=label, fields=fields, compiled=compiled, state=state, hyper=hyper,
                     batches=batches, gflops=gflops, compile_seconds=compile_seconds,
                     times=[], mfus=[], cpu=[], mfus_cpu=[], loss=float(metrics["loss"])))

  roof = common.Roofline()
  ratios = {r["label"]: [] for r in runs}
  for rnd in range(args.rounds):
    order = runs[rnd % len(runs):] + runs[:rnd % len(runs)]
    this_round = {}
    for run in order:
      t, c = time.perf_counter(), time.process_time()
      run["state"], _ = run["compiled"](run["state"], run["batches"], run["hyper"])
      jax.block_until_ready(run["state"])
      dt = time.perf_counter() - t
      run["cpu"].append(time.process_time() - c)
      peak, cpu_peak = roof.measure_both()
      run["times"].append(dt)
      run["mfus"].append(run["gflops"] / dt / peak)
      run["mfus_cpu"].append(run["gflops"] / run["cpu"][-1] / cpu_peak)
      this_round[run["label"]] = dt
    for run in runs:
      ratios[run["label"]].append(this_round[run["label"]] / this_round[runs[0]["label"]])

  result = {"benchmark": "compare", "model": args.model, "nmaps": args.nmaps,
            "length": args.length, "batch_size": args.batch_size, "rounds": args.rounds,
            "backend": jax.default_backend(), "xla_flags": os.environ.get("XLA_FLAGS", ""), "malloc_tuning": malloc_tuned,
            "variants": []}
  for run in runs:
    row = {"label": run["label"], "fields": run["fields"],
           "step_seconds": round(statistics.median(run["times"]), 4),
           "mfu": round(statistics.median(run["mfus"]), 3),
           "cpu_seconds_per_step": round(statistics.median(run["cpu"]), 4),
           "mfu_cpu": round(statistics.median(run["mfus_cpu"]), 3),
           "ratio_to_first": round(statistics.median(ratios[run["label"]]), 3),
           "compile_seconds": round(run["compile_seconds"], 2),
           "model_gflops_per_step": round(run["gflops"], 3), "first_loss": round(run["loss"], 5)}
    result["variants"].append(row)
    print(f"{row['label']:>16}: {row['step_seconds']:.3f} s/step  mfu {row['mfu']:.3f}  "
          f"cpu {row['cpu_seconds_per_step']:.3f} s/step  mfu_cpu {row['mfu_cpu']:.3f}  "
          f"x{row['ratio_to_first']:.3f} of {runs[0]['label']}  compile {row['compile_seconds']} s",
          flush=True)
  common.emit(result)


if __name__ == "__main__":
  main()
