"""Times full training steps of a model through the real `Trainer.train_step`.

  cd /work/main && PYTHONPATH=. /work/venv/bin/python benchmarks/train_step.py \
      --model=neural_gpu --nmaps=24 --length=41 --batch_size=32

The config comes from experiments/base.py (task badd unless --task) with a fixed curriculum at
--length. `Trainer.train_step` (the jit'd function the trainer runs) is lowered and compiled
once for the step's shapes (`compile_seconds`); the timed calls run that same executable,
threading the train state from step to step. Reported: the median of --steps steps after
--warmup untimed ones. The last line printed is one JSON object.

MFU = achieved GFLOP/s / matmul roofline, where the roofline is a dense 2048^3 fp32 jit'd
matmul timed in the same process on the same device right after each timed step (the median of
the per-pair ratios is reported, which cancels part of the load on a shared machine); the model
FLOPs are counted analytically (benchmarks/common.py): forward + backward = 3x forward.
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


def parse_value(text: str):
  for cast in (int, float):
    try:
      return cast(text)
    except ValueError:
      pass
  if text in ("True", "true", "False", "false"):
    return text in ("True", "true")
  return text


def set_field(config, item: str) -> None:
  """'field=value' sets config.model.field; 'train.field=value' (or another section) that one."""
  key, value = item.split("=", 1)
  section, _, field = key.rpartition(".")
  config[section or "model"][field] = parse_value(value)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", default="neural_gpu")
  p.add_argument("--task", default="badd")
  p.add_argument("--nmaps", type=int, default=24)
  p.add_argument("--length", type=int, default=41)
  p.add_argument("--batch_size", type=int, default=32)
  p.add_argument("--steps", type=int, default=7, help="timed steps (median reported)")
  p.add_argument("--warmup", type=int, default=2, help="untimed steps after compiling")
  p.add_argument("--remat", action="store_true", help="model.remat=True (rematerialized scan)")
  p.add_argument("--autodiff", action="store_true",
                 help="the models' time loops differentiated by plain autodiff through lax.scan "
                 "(tests/oracles.py) instead of their custom VJPs")
  p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                 help="extra model field, e.g. --set=conv_impl=conv, or train.FIELD=VALUE "
                 "(e.g. --set=train.shorter_fraction=0) (repeatable)")
  p.add_argument("--num_devices", type=int, default=0,
                 help="train.num_devices: the batch is split over this many devices (0: all)")
  p.add_argument("--curriculum", default="fixed",
                 help="'fixed' (one batch at --length) or 'default' (the model's own)")
  common.add_process_args(p)
  p.add_argument("--compilation_cache", default="",
                 help="persistent compilation cache folder (as launch.py sets it)")
  p.add_argument("--no_peak", action="store_true", help="skip the matmul roofline")
  args = p.parse_args(argv)
  malloc_tuned = common.setup_process(args)
  import jax
  if args.compilation_cache:  # as launch.py does (it sets JAX_COMPILATION_CACHE_DIR)
    jax.config.update("jax_compilation_cache_dir", args.compilation_cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  from experiments import base
  from neural_gpu import train
  from tests import oracles

  config = base.get_config(task=args.task, model=args.model)
  config.model.nmaps = args.nmaps
  if args.remat:
    config.model.remat = True
  for item in args.set:
    set_field(config, item)
  config.train.batch_size = args.batch_size
  config.train.max_length = args.length
  config.train.num_devices = args.num_devices
  if args.curriculum == "fixed":
    config.curriculum.name = "fixed"
    config.train.pool_size = 0  # the example pool belongs to the all-bins curriculum

  workdir = tempfile.mkdtemp(prefix="bench_train_step_")
  trainer = train.Trainer(config, workdir)
  state, host = trainer.init_state(), trainer.init_host()
  hyper = trainer.hyper(host)
  total = args.warmup + args.steps
  trainer.dp.check_batch_size(args.batch_size)
  all_batches = [trainer.dp.shard(trainer.batches(i, host)) for i in range(max(total, 1))]

  t0 = time.perf_counter()
  with oracles.autodiff_loops() if args.autodiff else contextlib.nullcontext():
    lowered = trainer.train_step.lower(state, all_batches[0], hyper)
  compiled = lowered.compile()
  compile_seconds = time.perf_counter() - t0
  memory = {}
  try:
    analysis = compiled.memory_analysis()
    memory["compiled_temp_bytes"] = int(analysis.temp_size_in_bytes)
  except Exception:  # not every backend reports it
    pass

  roof = None if args.no_peak else common.Roofline()
  times, cpu_times, peaks, cpu_peaks = [], [], [], []
  for i in range(total):
    t, c = time.perf_counter(), time.process_time()
    state, metrics = compiled(state, all_batches[i], hyper)
    jax.block_until_ready((state, metrics))
    if i >= args.warmup:
      times.append(time.perf_counter() - t)
      cpu_times.append(time.process_time() - c)
      if roof is not None:
        peak, cpu_peak = roof.measure_both()
        peaks.append(peak)
        cpu_peaks.append(cpu_peak)
  loss = float(metrics["loss"])
  step_seconds = statistics.median(times)

  gflops = common.step_gflops(config.model, all_batches[0], trainer.task.vocab_size)
  examples = sum(inputs.shape[0] for inputs, _, _ in all_batches[0])
  achieved = gflops / step_seconds
  peak = statistics.median(peaks) if peaks else None
  # Each step paired with the roofline matmul timed right after it (shared-machine noise).
  mfu = statistics.median(gflops / t / p for t, p in zip(times, peaks)) if peaks else None

  result = {
      "benchmark": "train_step",
      "model": args.model,
      "task": args.task,
      "nmaps": args.nmaps,
      "length": args.length,
      "batch_size": args.batch_size,
      "num_devices": trainer.dp.num_devices,
      "model_fields": {k: v for k, v in config.model.items() if k != "name"},
      "autodiff": args.autodiff,
      "step_seconds": round(step_seconds, 4),
      "step_seconds_all": [round(t, 4) for t in times],
      "examples_per_second": round(examples / step_seconds, 2),
      "compile_seconds": round(compile_seconds, 2),
      "model_gflops_per_step": round(gflops, 3),
      "achieved_gflops": round(achieved, 2),
      "matmul_peak_gflops": None if peak is None else round(peak, 2),
      "mfu": None if mfu is None else round(mfu, 3),
      "cpu_seconds_per_step": round(statistics.median(cpu_times), 4),
      "mfu_cpu": (round(statistics.median(gflops / c / p for c, p in zip(cpu_times, cpu_peaks)), 3)
                  if cpu_peaks else None),
      **common.peak_memory_bytes(),
      **memory,
      "loss": round(loss, 5),
      "backend": jax.default_backend(),
      "device": str(jax.devices()[0].device_kind),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "malloc_tuning": malloc_tuned,
      "compilation_cache": jax.config.jax_compilation_cache_dir or "",
  }
  common.emit(result)
  return result


if __name__ == "__main__":
  main()
