"""Helpers shared by the benchmark scripts: timing, peak memory, a matmul roofline, model FLOPs.

Two efficiencies are reported. `mfu`: achieved model GFLOP/s over the roofline matmul's GFLOP/s,
both wall clock, the roofline timed right after each timed step (median of the pairs).
`mfu_cpu`: the same ratio per process CPU second (user + sys over all threads). On a machine
shared with other jobs the wall clock depends on how much of the CPU the others leave, the CPU
time much less; mfu_cpu cannot see time where one of our threads idles, mfu can.

FLOPs are counted analytically from the model's convolutions and matmuls (2 FLOPs per
multiply-add), never from what an implementation happens to execute: the Neural GPU is charged
for a true 3x3 convolution (9 taps per output cell, SAME padding counted as usual), not for the
zero blocks of its banded matmul form. A training step is charged 3x its forward pass.
"""

import json
import os
import platform
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:
  sys.path.insert(0, REPO)


def block(tree):
  return jax.block_until_ready(tree)


def time_calls(fn, repeats: int, min_seconds: float = 0.0) -> list[float]:
  """Wall-clock seconds of `repeats` calls (more while their sum is below `min_seconds`)."""
  times = []
  while len(times) < repeats or sum(times) < min_seconds:
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
    if len(times) >= 10 * max(repeats, 1):
      break
  return times


class Roofline:
  """A dense jit'd fp32 n x n matmul on the default device; `measure()` gives its GFLOP/s.

  On a shared machine the load changes from second to second, so the benchmarks time one
  roofline matmul right after each timed step and report the median of the per-pair ratios
  as the MFU (and the median roofline as matmul_peak_gflops).
  """

  def __init__(self, n: int = 2048):
    ka, kb = jax.random.split(jax.random.key(0))
    self.n = n
    self.a = jax.random.normal(ka, (n, n), jnp.float32)
    self.b = jax.random.normal(kb, (n, n), jnp.float32)
    self.f = jax.jit(lambda a, b: a @ b)
    block(self.f(self.a, self.b))

  def measure(self) -> float:
    """GFLOP/s of one roofline matmul (wall clock)."""
    return self.measure_both()[0]

  def measure_both(self, repeats: int = 3) -> tuple[float, float]:
    """(GFLOP per wall second, GFLOP per process CPU second) of the roofline matmul: medians
    of `repeats` calls."""
    flops = 2.0 * self.n ** 3 / 1e9
    walls, cpus = [], []
    for _ in range(repeats):
      t0, c0 = time.perf_counter(), time.process_time()
      block(self.f(self.a, self.b))
      walls.append(flops / (time.perf_counter() - t0))
      cpus.append(flops / max(time.process_time() - c0, 1e-9))
    return statistics.median(walls), statistics.median(cpus)


def matmul_peak_gflops(n: int = 2048, repeats: int = 7) -> float:
  """Median GFLOP/s of a dense jit'd fp32 n x n matmul on the default device (a roofline)."""
  roof = Roofline(n)
  return statistics.median(roof.measure() for _ in range(repeats))


def peak_memory_bytes() -> dict:
  """Peak memory of this process: device allocator peak on GPU/TPU, max RSS on the CPU."""
  device = jax.devices()[0]
  out = {}
  stats = None
  try:
    stats = device.memory_stats()
  except Exception:  # the CPU client has no allocator statistics
    stats = None
  if stats and "peak_bytes_in_use" in stats:
    out["peak_memory_bytes"] = int(stats["peak_bytes_in_use"])
    out["peak_memory_source"] = "device memory_stats peak_bytes_in_use"
  else:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if platform.system() == "Darwin" else 1024  # Linux reports KiB
    out["peak_memory_bytes"] = int(rss * scale)
    out["peak_memory_source"] = "getrusage ru_maxrss (whole process)"
  return out


# -- analytic FLOPs --------------------------------------------------------------------------


def ngpu_forward_flops(batch: int, width: int, steps: int, nmaps: int, height: int = 4,
                       layers: int = 2, vocab: int = 0) -> float:
  """Forward FLOPs of the CGRU Neural GPU: per step and layer a 3x3 conv m -> 2m (gates) and
  a 3x3 conv m -> m (candidate) over batch * width * height cells; plus the 1x1 input
  projection and the readout."""
  cells = batch * width * height
  per_layer_step = cells * 9 * nmaps * (2 * nmaps + nmaps)
  macs = steps * layers * per_layer_step
  macs += batch * width * nmaps * nmaps  # input projection
  macs += batch * width * nmaps * vocab  # readout
  return 2.0 * macs


def dngpu_forward_flops(batch: int, width: int, steps: int, nmaps: int, vocab: int = 0) -> float:
  """Forward FLOPs of the improved Neural GPU: per step a width-3 conv m -> 2m (gates) and a
  width-3 conv m -> m (candidate) over batch * width cells; plus the readout."""
  cells = batch * width
  macs = steps * cells * 3 * nmaps * (2 * nmaps + nmaps)
  macs += batch * width * nmaps * vocab
  return 2.0 * macs


def forward_flops(model_config, batch: int, width: int, steps: int, vocab: int) -> float:
  name = model_config["name"]
  if name == "neural_gpu":
    return ngpu_forward_flops(batch, width, steps, model_config["nmaps"],
                              model_config.get("height", 4), model_config.get("num_layers", 2),
                              vocab)
  if name == "dngpu":
    return dngpu_forward_flops(batch, width, steps, model_config["nmaps"], vocab)
  raise ValueError(f"no FLOP count for model {name!r}")


def step_gflops(model_config, batches, vocab: int) -> float:
  """Model GFLOP of one training step (3x the forward) over a step's bins (inputs, targets,
  lengths): each example runs its length in steps, or its bin's width with model.bin_steps."""
  import numpy as np
  fwd = 0.0
  for inputs, _, lengths in batches:
    width = inputs.shape[1]
    for n in np.asarray(lengths):
      steps = width if model_config.get("bin_steps", False) else int(n)
      fwd += forward_flops(model_config, 1, width, steps, vocab)
  return 3.0 * fwd / 1e9


def emit(result: dict) -> None:
  """Prints the result as the last line: one JSON object."""
  print(json.dumps(result, sort_keys=False), flush=True)


def parse_xla_flags(extra: str) -> None:
  """Appends `extra` to XLA_FLAGS before jax initializes its backend."""
  if extra:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + extra).strip()


def add_process_args(parser) -> None:
  """Flags every benchmark takes for the process set-up (see `setup_process`)."""
  parser.add_argument("--malloc_tuning", type=int, default=1,
                      help="0: NEURAL_GPU_MALLOC_TUNING=0, i.e. no "
                      "neural_gpu.cpu_tuning.tune_malloc() (which launch.py applies too)")
  parser.add_argument("--xla_flags", default="", help="appended to XLA_FLAGS")


def setup_process(args) -> bool:
  """XLA flags and malloc tuning, before JAX starts; returns whether malloc tuning is on."""
  parse_xla_flags(args.xla_flags)
  if not args.malloc_tuning:
    os.environ["NEURAL_GPU_MALLOC_TUNING"] = "0"
  from neural_gpu import cpu_tuning
  return cpu_tuning.tune_malloc()
