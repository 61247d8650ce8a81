"""Every GPU check of the open issues in one run of about 9 minutes (BENCHMARKS.md, "GPU").

  python benchmarks/gpu_session.py OUTDIR [--checkpoint=RUN_FOLDER] [--budget=520] [--groups=...]
  python benchmarks/gpu_session.py /tmp/gs --smoke --checkpoint=/tmp/tiny   # CPU, tiny sizes

In order, each item a subprocess under `timeout`: its own cap, never past the session's
--budget seconds, and the train-step items (b) leave --eval_reserve seconds for the evaluations.
  a. environment: nvidia-smi, python/jax/jaxlib versions, jax.devices(); the error (against
     float64) and speed of an 8192^3 float32 matmul under each distinct eval.matmul_precision;
  b. training steps (benchmarks/train_step.py): NGPU m=24 L=41 b=32; DNGPU all 9 bins
     (--curriculum=default), dropout 0, at m=24, 48, 96;
  c. the 100x evaluation (benchmarks/eval_length.py): 1024 bmul examples at L=4001, DNGPU m=96,
     at precision highest, default (XLA's: TF32 on recent NVIDIA GPUs) and BF16_BF16_F32, in
     the evaluator's batches, each run stopping early (--max_seconds: examples_timed, and
     seconds_for_num_examples extrapolates) when its cap comes; then default in batches of 128;
  c2. with --checkpoint (a trained run folder: config.json and checkpoints/<step>): `launch.py
     --mode=eval` of its latest checkpoint at L=41 and 401 at each precision, on copies under
     /tmp, so that a trained model's error at each precision can be compared;
  d. with the time left (at least --min_train_seconds): a short bmul DNGPU training
     (experiments/task.py:task=bmul,model=dngpu), its step count fitted from b's m=96 step
     time, evaluated at L=41 and 401.
--smoke runs the same items at tiny sizes (d: experiments/tiny.py) in about a minute on a CPU.

Writes (at most 8 files, as the device tool returns): OUTDIR/session.log (everything the items
print, as it comes), OUTDIR/results.json (one entry per item: command, status ok / failed /
timeout / skipped, seconds, and the JSON object the item printed last or the report it wrote;
rewritten after every item, so a killed session keeps what it measured), and d's
metrics.jsonl and eval report. Exit status 0 when every item that ran finished.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PRECISIONS = ("highest", "default", "BF16_BF16_F32")  # the distinct ones (JAX's aliases aside)


def precision_probe(n: int) -> dict:
  """Error and speed of an n x n x n float32 matmul under each of PRECISIONS: max and median
  relative error of 128 rows against float64 numpy, TFLOP/s (median of 5 after a warm-up)."""
  import statistics

  import jax
  import numpy as np
  a = np.asarray(jax.random.normal(jax.random.key(0), (n, n)), np.float32)
  b = np.asarray(jax.random.normal(jax.random.key(1), (n, n)), np.float32)
  rows = min(n, 128)
  exact = a[:rows].astype(np.float64) @ b.astype(np.float64)
  scale = np.abs(a[:rows]).astype(np.float64) @ np.abs(b).astype(np.float64)
  da, db = jax.device_put(a), jax.device_put(b)
  out = {"n": n}
  for precision in PRECISIONS:
    try:
      with jax.default_matmul_precision(precision):
        f = jax.jit(lambda x, y: x @ y)
        c = np.asarray(f(da, db))
        times = []
        for _ in range(5):
          t = time.perf_counter()
          jax.block_until_ready(f(da, db))
          times.append(time.perf_counter() - t)
      rel = np.abs(c[:rows] - exact) / scale  # error per unit of sum(|a||b|): rounding-sized
      out[precision] = {"max_rel_error": float(rel.max()), "median_rel_error": float(np.median(rel)),
                        "tflops": round(2 * n ** 3 / statistics.median(times) / 1e12, 2)}
    except Exception as e:  # a preset this backend does not compile
      out[precision] = {"error": str(e).splitlines()[0][:300]}
  return out


class Session:
  def __init__(self, out: str, budget: float):
    self.out, self.budget, self.start = out, budget, time.monotonic()
    os.makedirs(out, exist_ok=True)
    self.log = open(os.path.join(out, "session.log"), "a", buffering=1)
    self.results = []

  def left(self) -> float:
    return self.budget - (time.monotonic() - self.start)

  def say(self, text: str) -> None:
    print(text, flush=True)
    self.log.write(text + "\n")

  def save(self) -> None:
    tmp = os.path.join(self.out, "results.json.tmp")
    with open(tmp, "w") as f:
      json.dump({"budget_seconds": self.budget,
                 "elapsed_seconds": round(time.monotonic() - self.start, 1),
                 "items": self.results}, f, indent=1)
    os.replace(tmp, os.path.join(self.out, "results.json"))

  def run(self, name: str, command: list[str], cap: float, keep: float = 0.0,
          min_seconds: float = 10.0, report=None) -> dict:
    """Runs `command` (argv) under `timeout`, for at most `cap` seconds and never past the
    budget less `keep`; tees its output. report: a path whose JSON becomes the item's result
    (else the last line printed, if JSON)."""
    limit = min(cap, self.left() - keep)
    entry = {"name": name, "command": " ".join(command), "cap_seconds": round(limit, 1)}
    if limit < min_seconds:
      entry["status"] = "skipped"
      entry["why"] = f"{self.left():.0f} s of the budget left"
      self.say(f"=== {name}: skipped ({entry['why']})")
      self.results.append(entry)
      self.save()
      return entry
    self.say(f"=== {name} (cap {limit:.0f} s, {self.left():.0f} s left): {entry['command']}")
    t0 = time.monotonic()
    last = ""
    proc = subprocess.Popen(["timeout", "-k", "5", str(int(limit)), *command], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stdout:
      line = line.rstrip("\n")
      self.say(line)
      if line.strip():
        last = line
    rc = proc.wait()
    entry["seconds"] = round(time.monotonic() - t0, 1)
    entry["status"] = "ok" if rc == 0 else "timeout" if rc in (124, 137) else "failed"
    entry["rc"] = rc
    try:
      if report:
        with open(report) as f:
          entry["result"] = json.load(f)
      elif last.startswith("{"):
        entry["result"] = json.loads(last)
    except (OSError, ValueError):
      pass
    self.say(f"=== {name}: {entry['status']} in {entry['seconds']} s")
    self.results.append(entry)
    self.save()
    return entry


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("out", help="output folder ($OUT on the device machine)")
  p.add_argument("--smoke", action="store_true", help="tiny sizes, to test the script on a CPU")
  p.add_argument("--budget", type=float, default=520.0, help="seconds for the whole session")
  p.add_argument("--groups", default="a,b,c,c2,d", help="which of the items (docstring) to run")
  p.add_argument("--eval_reserve", type=float, default=220.0,
                 help="seconds the train-step items (b) leave for the evaluations (c)")
  p.add_argument("--checkpoint", default="", help="c2: a trained run folder to evaluate at "
                 "each precision (copied, never written)")
  p.add_argument("--min_train_seconds", type=float, default=90.0, help="d runs only if this "
                 "many seconds are left")
  args = p.parse_args(argv)
  groups = set(args.groups.split(","))
  s = Session(args.out, args.budget)
  py, smoke = sys.executable, args.smoke
  s.say(f"gpu_session {'(smoke) ' if smoke else ''}into {args.out}, budget {args.budget:.0f} s, "
        f"groups {args.groups}")

  if "a" in groups:  # environment
    if shutil.which("nvidia-smi"):
      s.run("nvidia_smi", ["nvidia-smi"], cap=20)
    s.run("versions", [py, "-c", "import json, sys, jax, jaxlib, flax, optax; print(json.dumps("
                       "{'python': sys.version.split()[0], 'jax': jax.__version__, 'jaxlib': "
                       "jaxlib.__version__, 'flax': flax.__version__, 'optax': optax.__version__, "
                       "'backend': jax.default_backend(), 'devices': [str(d) for d in "
                       "jax.devices()], 'device_kind': jax.devices()[0].device_kind}))"], cap=40)
    s.run("precision_probe", [py, os.path.abspath(__file__), args.out, "--probe",
                              str(256 if smoke else 8192)], cap=45)

  if "b" in groups:  # training steps
    if smoke:  # one bin at L=9: the all-bins step takes minutes to compile on a CPU
      tiny = ["--length=9", "--batch_size=4", "--steps=2", "--warmup=1", "--no_peak"]
      s.run("train_ngpu_m8", [py, "benchmarks/train_step.py", "--model=neural_gpu",
                              "--nmaps=8", *tiny], cap=60)
      s.run("train_dngpu_m8", [py, "benchmarks/train_step.py", "--model=dngpu", "--nmaps=8",
                               "--set=dropout=0.0", *tiny], cap=60)
    else:
      s.run("train_ngpu_m24", [py, "benchmarks/train_step.py", "--model=neural_gpu",
                               "--nmaps=24", "--length=41", "--batch_size=32"],
            cap=45, keep=args.eval_reserve)
      for m in (24, 48, 96):
        s.run(f"train_dngpu_all_bins_m{m}", [py, "benchmarks/train_step.py", "--model=dngpu",
                                             f"--nmaps={m}", "--curriculum=default",
                                             "--set=dropout=0.0"],
              cap=60, keep=args.eval_reserve)

  if "c" in groups:  # the 100x evaluation; each run stops (--max_seconds) before its cap
    length, nmaps, count = (41, 8, 16) if smoke else (4001, 96, 1024)
    runs = [(p, 0, 80 if p == "highest" else 60) for p in PRECISIONS] + [("default", 128, 45)]
    for precision, batch, cap in runs:
      cap = min(cap, s.left())
      s.run(f"eval_bmul_L{length}_{precision}" + (f"_b{batch}" if batch else ""),
            [py, "benchmarks/eval_length.py", "--task=bmul", "--model=dngpu", f"--nmaps={nmaps}",
             f"--length={length}", f"--num_examples={count}", f"--precision={precision}",
             f"--batch_size={batch}", f"--max_seconds={max(cap - 10, 5):.0f}"],
            cap=cap, min_seconds=25)

  trained = bool(args.checkpoint) and os.path.isdir(os.path.join(args.checkpoint, "checkpoints"))
  if "c2" in groups and args.checkpoint and not trained:
    s.say(f"=== trained_eval: skipped (no {args.checkpoint}/checkpoints; was it carried?)")
  if "c2" in groups and trained:  # a trained model's errors at each precision
    lengths, num = ("9,17", 16) if smoke else ("41,401", 128)
    for precision in PRECISIONS:
      workdir = f"/tmp/gpu_session_ckpt_{precision}"
      shutil.rmtree(workdir, ignore_errors=True)
      shutil.copytree(args.checkpoint, workdir)
      step = max(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())
      s.run(f"trained_eval_{precision}",
            [py, "launch.py", "--mode=eval", f"--workdir={workdir}", f"--lengths={lengths}",
             f"--num_examples={num}", "--hard_kinds=", f"--matmul_precision={precision}"],
            cap=50, min_seconds=20, report=os.path.join(workdir, "eval", f"step_{step}.json"))

  if "d" in groups:  # a short bmul training with the time left
    workdir = "/tmp/gpu_session_bmul_s0"
    shutil.rmtree(workdir, ignore_errors=True)
    if smoke:
      train = ["--config=experiments/tiny.py", "--config.train.num_steps=10"]
      last_step = 10
    else:
      step_seconds = next((r["result"]["step_seconds"] for r in s.results
                           if r["name"] == "train_dngpu_all_bins_m96" and "result" in r), 1.0)
      # ~150 s for the start, the example pool, the compiles and the final evaluation (a guess:
      # no GPU run has measured them yet); the rest in steps of b's m=96 step time.
      last_step = max(200, int(max(s.left() - 150, 0) / step_seconds) // 200 * 200)
      train = ["--config=experiments/task.py:task=bmul,model=dngpu",
               f"--config.train.num_steps={last_step}", "--config.eval.lengths=(41,401)",
               "--config.eval.num_examples=(256,64)"]
    report = os.path.join(workdir, "eval", f"step_{last_step}.json")
    entry = s.run("train_bmul_dngpu", [py, "launch.py", *train, f"--workdir={workdir}"],
                  cap=s.left(), min_seconds=30 if smoke else args.min_train_seconds,
                  report=report)
    for path in (os.path.join(workdir, "metrics.jsonl"), report):
      if entry["status"] != "skipped" and os.path.exists(path):
        shutil.copy(path, os.path.join(args.out, "bmul_" + os.path.basename(path)))

  ran = [r for r in s.results if r["status"] != "skipped"]
  s.say("=== summary: " + ", ".join(f"{r['name']} {r['status']}" for r in s.results))
  s.say(f"=== {len(ran)} items ran in {time.monotonic() - s.start:.0f} s; "
        f"results in {os.path.join(args.out, 'results.json')}")
  return 0 if all(r["status"] == "ok" for r in ran) else 1


if __name__ == "__main__":
  if len(sys.argv) == 4 and sys.argv[2] == "--probe":  # the precision probe's own process
    sys.path.insert(0, REPO)
    print(json.dumps(precision_probe(int(sys.argv[3]))))
  else:
    sys.exit(main())
