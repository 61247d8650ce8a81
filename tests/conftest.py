"""Test set-up: the repository root on sys.path, and a shared XLA compilation cache.

Many tests build the same tiny programs (and launch.py subprocesses build them again); the
persistent cache lets each be compiled once per test session.
"""

import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

_CACHE = os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                               os.path.join(tempfile.gettempdir(), "neural_gpu_test_xla_cache"))

import jax  # noqa: E402  (after the cache directory is chosen)

jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
