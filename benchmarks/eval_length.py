"""Evaluation throughput at a long length through the real `evaluate.make_error_fn`.

  cd /work/main && PYTHONPATH=. /work/venv/bin/python benchmarks/eval_length.py \
      --model=dngpu --nmaps=48 --length=4001 --num_examples=16

The model comes from experiments/base.py (task badd unless --task) with randomly initialized
parameters (speed does not depend on their values). The jit'd error function the evaluator
uses is compiled once for the batch shape (`compile_seconds`), then --num_examples examples run
in batches of --batch_size (default: the evaluator's own choice), each batch timed and followed
by the roofline matmul (or fewer: --max_seconds). --precision sets eval.matmul_precision. FLOPs
are counted analytically (forward only; benchmarks/common.py). The last line printed is one
JSON object.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402
from benchmarks.train_step import parse_value  # noqa: E402


def main(argv=None):
  started = time.perf_counter()
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", default="dngpu")
  p.add_argument("--task", default="badd")
  p.add_argument("--nmaps", type=int, default=48)
  p.add_argument("--length", type=int, default=4001)
  p.add_argument("--num_examples", type=int, default=16)
  p.add_argument("--batch_size", type=int, default=0, help="rows per call; 0: as the evaluator does "
                 "(evaluate.batch_size_for on each device)")
  p.add_argument("--precision", default="highest",
                 help="eval.matmul_precision: jax.default_matmul_precision of the error function "
                 "(evaluate.MATMUL_PRECISIONS; highest: float32)")
  p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
  p.add_argument("--num_devices", type=int, default=0,
                 help="train.num_devices: each batch is split over this many devices (0: all)")
  common.add_process_args(p)
  p.add_argument("--max_seconds", type=float, default=0.0,
                 help="stop before the batch that would end past this many seconds since the "
                 "start, set-up and compile included (0: all of --num_examples); then "
                 "examples_timed < num_examples")
  p.add_argument("--no_peak", action="store_true")
  args = p.parse_args(argv)
  malloc_tuned = common.setup_process(args)
  import jax
  import numpy as np
  from experiments import base
  from neural_gpu import evaluate, optimizers, sharding
  from neural_gpu import state as state_lib
  try:
    evaluate.check_matmul_precision(args.precision, "--precision")
  except ValueError as e:
    raise SystemExit(f"error: {e}")

  config = base.get_config(task=args.task, model=args.model)
  config.model.nmaps = args.nmaps
  for item in args.set:
    key, value = item.split("=", 1)
    config.model[key] = parse_value(value)
  config.train.num_devices = args.num_devices
  task = state_lib.build_task(config)  # what evaluate.restore_checkpoint builds, no trainer
  model = state_lib.build_model(config, task)
  dp = sharding.DataParallel.from_config(config, training=False)
  if not task.is_valid_length(args.length):
    raise SystemExit(f"{args.task} has no examples of length {args.length}")
  state = dp.replicate(state_lib.init_state(config, model, optimizers.make(config.optimizer),
                                            config.train.max_length))
  variables = {"params": state.params, **state.model_state}
  # The evaluator's call: one batch_size_for batch per device (evaluate.evaluate_lengths),
  # padded to split evenly (evaluate.count_errors).
  batch = dp.padded_size(args.batch_size or dp.num_devices *
                                 evaluate.batch_size_for(args.length, args.num_examples))
  num_batches = -(-args.num_examples // batch)
  error_fn = evaluate.make_error_fn(model, dp.replicated,  # as the evaluator makes it
                                    matmul_precision=args.precision)
  lens = np.full((batch,), args.length, np.int32)

  def data(i):  # made when needed (a long run may stop early), outside the timed call
    d = task.sample(evaluate.data_seed(config.seed, evaluate.EVAL_STREAM, args.length, i),
                    batch, args.length)
    return dp.shard((d.inputs, d.targets, lens))

  t0 = time.perf_counter()
  compiled = error_fn.lower(variables, *data(0)).compile()
  compile_seconds = time.perf_counter() - t0
  memory = {}
  try:
    memory["compiled_temp_bytes"] = int(compiled.memory_analysis().temp_size_in_bytes)
  except Exception:
    pass

  roof = None if args.no_peak else common.Roofline()
  times, cpu_times, peaks, cpu_peaks = [], [], [], []
  seq_wrong = 0
  loop_start = time.perf_counter()
  for i in range(num_batches):
    if times and args.max_seconds and (time.perf_counter() - started + (
        time.perf_counter() - loop_start) / len(times) > args.max_seconds):
      break  # the next batch would end past --max_seconds
    batch_data = data(i)
    t, c = time.perf_counter(), time.process_time()
    any_wrong, _ = jax.block_until_ready(compiled(variables, *batch_data))
    times.append(time.perf_counter() - t)
    cpu_times.append(time.process_time() - c)
    seq_wrong += int(any_wrong.sum())
    if roof is not None:
      peak, cpu_peak = roof.measure_both()
      peaks.append(peak)
      cpu_peaks.append(cpu_peak)

  fwd = common.forward_flops(config.model, batch, args.length, args.length,
                             task.vocab_size)
  batch_seconds = statistics.median(times)
  gflops = fwd / 1e9
  mfu = statistics.median(gflops / t / p for t, p in zip(times, peaks)) if peaks else None
  result = {
      "benchmark": "eval_length",
      "model": args.model,
      "task": args.task,
      "nmaps": args.nmaps,
      "length": args.length,
      "num_examples": num_batches * batch,
      "examples_timed": len(times) * batch,
      "batch_size": batch,
      "num_devices": dp.num_devices,
      "matmul_precision": args.precision,
      "model_fields": {k: v for k, v in config.model.items() if k != "name"},
      "batch_seconds": round(batch_seconds, 3),
      "batch_seconds_all": [round(t, 3) for t in times],
      "timed_seconds": round(sum(times), 3),  # the batches' calls, summed
      "seconds_for_num_examples": round(batch_seconds * num_batches, 2),  # median x batches
      "loop_wall_seconds": round(time.perf_counter() - loop_start, 2),  # with data and roofline
      "cpu_seconds_per_batch": round(statistics.median(cpu_times), 3),
      "examples_per_second": round(batch / batch_seconds, 4),
      "compile_seconds": round(compile_seconds, 2),
      "model_gflops_per_batch": round(gflops, 1),
      "model_gflops_per_example": round(gflops / batch, 1),
      "achieved_gflops": round(gflops / batch_seconds, 2),
      "matmul_peak_gflops": round(statistics.median(peaks), 2) if peaks else None,
      "mfu": None if mfu is None else round(mfu, 3),
      "mfu_cpu": (round(statistics.median(gflops / c / p for c, p in zip(cpu_times, cpu_peaks)), 3)
                  if cpu_peaks else None),
      **common.peak_memory_bytes(),
      **memory,
      "sequence_error_untrained": seq_wrong / (len(times) * batch),
      "backend": jax.default_backend(),
      "device": str(jax.devices()[0].device_kind),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "malloc_tuning": malloc_tuned,
  }
  common.emit(result)
  return result


if __name__ == "__main__":
  main()
