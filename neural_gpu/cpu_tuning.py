"""Process-level settings that make XLA:CPU training steps cheaper on Linux (glibc).

XLA:CPU allocates each execution's temporary buffer (hundreds of MB for a Neural GPU training
step: the residuals the backward pass needs) afresh and frees it afterwards. glibc serves such
sizes with mmap, or from per-thread arenas that return memory to the kernel, so every step
page-faults the whole buffer back in: on the project's 2-core VM that was ~146k minor faults
and ~0.4 s of kernel time per NGPU step (m=24, L=41, batch 32). `tune_malloc()` keeps freed
memory in the process (one arena, no mmap for large blocks, no trimming), so later steps reuse
it. The cost: the process keeps its peak heap (RSS does not shrink after a step).

Call it early, before JAX starts its CPU client (its threads pick their malloc arenas when they
first allocate). The entry points call it at start-up, before any JAX computation (launch.py,
the benchmarks through common.setup_process, tests/conftest.py); importing the package does not.
BENCHMARKS.md has the figures. NEURAL_GPU_MALLOC_TUNING=0 in the environment turns it off.
"""

import ctypes
import ctypes.util
import os
import sys

# mallopt parameters from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8

_applied = None


def tune_malloc() -> bool:
  """Applies the settings once; returns whether they are in effect (False off glibc/Linux)."""
  global _applied
  if _applied is not None:
    return _applied
  _applied = False
  if os.environ.get("NEURAL_GPU_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mallopt = libc.mallopt
  except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to do
    return False
  ok = (mallopt(M_ARENA_MAX, 1) == 1 and mallopt(M_MMAP_MAX, 0) == 1
        and mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1) == 1)
  _applied = bool(ok)
  return _applied
