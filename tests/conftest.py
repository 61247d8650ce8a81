"""Test set-up: the repository root on sys.path, malloc tuning as launch.py applies it
(neural_gpu/cpu_tuning.py), a shared XLA compilation cache, and the `tree_digest` fixture (a
folder's digest, for "a refused command writes nothing" checks).

Many tests build the same tiny programs (and launch.py subprocesses build them again); the
persistent cache lets each be compiled once per test session.
"""

import hashlib
import os
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

# Shared checks with plain asserts (tests/baseline_models.py): rewritten for pytest's messages.
pytest.register_assert_rewrite("tests.baseline_models")

from neural_gpu import cpu_tuning  # noqa: E402

cpu_tuning.tune_malloc()  # before JAX starts, as launch.py does

_CACHE = os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                               os.path.join(tempfile.gettempdir(), "neural_gpu_test_xla_cache"))

import jax  # noqa: E402  (after the cache directory is chosen)

jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _tree_digest(path: str) -> str:
  """SHA-256 over every file's path and bytes below `path`: equal digests, untouched folder."""
  digest = hashlib.sha256()
  for folder, _, files in sorted(os.walk(path)):
    for name in sorted(files):
      full = os.path.join(folder, name)
      digest.update(full.encode())
      with open(full, "rb") as f:
        digest.update(f.read())
  return digest.hexdigest()



@pytest.fixture
def tree_digest():
  return _tree_digest
