"""Time to the first training step of `python launch.py` (the default experiment), with an
empty and then a warm persistent compilation cache, and the compile time of every program.

  cd <repo root> && python benchmarks/startup.py
  python benchmarks/startup.py --config=experiments/badd_reference.py --set=model.nmaps=24

Each measurement is a fresh process (`--child`) that does what launch.py does before its first
step: set the compilation cache, import JAX and the trainer, build the Trainer from the config
file, initialize the state, draw the first batches and run one `train_step` to completion.
The first process gets an empty cache folder, the second the same folder (warm). Reported per
process: seconds from process start to the first step's end (`first_step_seconds`), the parts
(imports, trainer, init, first step) and each program's compile time as JAX logs it
(`jax_log_compiles`; those under 0.5 s as a count and a sum). Last line: one JSON object.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

START = time.perf_counter()
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def child(args) -> dict:
  import logging
  import re
  sys.path.insert(0, REPO)
  from neural_gpu import cpu_tuning
  cpu_tuning.tune_malloc()  # as launch.py
  os.environ["JAX_COMPILATION_CACHE_DIR"] = args.cache  # as launch.py, before JAX
  import jax
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  jax.config.update("jax_log_compiles", True)
  compiles = []

  class Collect(logging.Handler):
    def emit(self, record):
      m = re.search(r"Finished XLA compilation of (.+) in ([0-9.e-]+) sec", record.getMessage())
      if m:
        compiles.append((m.group(1), round(float(m.group(2)), 3)))

  logging.getLogger("jax").addHandler(Collect())
  logging.getLogger("jax").propagate = False  # keep stderr quiet
  from ml_collections import config_flags  # noqa: F401  (launch.py imports it too)
  from benchmarks.train_step import set_field
  from neural_gpu import train
  import importlib.util
  t_import = time.perf_counter()
  spec = importlib.util.spec_from_file_location("cfg", os.path.join(REPO, args.config))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  for item in args.set:
    set_field(config, item)
  trainer = train.Trainer(config, tempfile.mkdtemp(prefix="bench_startup_"))
  t_trainer = time.perf_counter()
  state, host = trainer.init_state(), trainer.init_host()
  jax.block_until_ready(state)
  t_init = time.perf_counter()
  state, metrics = trainer.train_step(state, trainer.batches(0, host), trainer.hyper(host))
  jax.block_until_ready((state, metrics))
  t_step = time.perf_counter()
  big = [c for c in compiles if c[1] >= 0.5]
  small = [c[1] for c in compiles if c[1] < 0.5]
  return {"first_step_seconds": round(t_step - START, 2),
          "imports_seconds": round(t_import - START, 2),
          "trainer_seconds": round(t_trainer - t_import, 2),
          "init_seconds": round(t_init - t_trainer, 2),
          "step_seconds": round(t_step - t_init, 2),
          "compiles": big, "other_compiles": [len(small), round(sum(small), 2)]}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--config", default="experiments/default.py")
  p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
  p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  p.add_argument("--cache", default="", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.child:
    print(json.dumps(child(args)), flush=True)
    return
  cache = tempfile.mkdtemp(prefix="bench_startup_cache_")
  runs = {}
  for label in ("cold", "warm"):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", f"--cache={cache}",
           f"--config={args.config}"] + [f"--set={s}" for s in args.set]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
    runs[label] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{label}: first step after {runs[label]['first_step_seconds']} s "
          f"(compiles >= 0.5 s: {runs[label]['compiles']}; others: {runs[label]['other_compiles'][0]} programs, {runs[label]['other_compiles'][1]} s)", flush=True)
  print(json.dumps({"benchmark": "startup", "config": args.config, "set": args.set, **runs}))


if __name__ == "__main__":
  main()
