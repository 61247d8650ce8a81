"""Entry point: train and evaluate a model on an algorithmic task, or evaluate a checkpoint.

  python launch.py                                   # the default experiment into runs/default
  python launch.py --config=experiments/task.py:task=badd,model=neural_gpu --workdir=runs/badd_ngpu
  python launch.py --config=experiments/task.py:task=copy --workdir=runs/copy --config.train.num_steps=500
  python launch.py --mode=eval --workdir=runs/default --lengths=21,201 --num_examples=64
  python launch.py --mode=eval --workdir=runs/badd_ref --lengths=401 --mc_dropout_samples=16
  python launch.py --mode=eval --workdir=runs/bmul --lengths=4001 --matmul_precision=default
  python launch.py --mode=visualize --workdir=runs/default --length=21   # state over time
  python launch.py --mode=errors --workdir=runs/badd_ref --lengths=41,401   # where answers go wrong
  python launch.py --config=experiments/sweep_ngpu_grid.py --workdir=runs/grid --sweep --parallel=2
  python launch.py --config=experiments/badd_cpu.py --seeds=0-9 --parallel=2 --workdir=runs/badd_seeds
  # several hosts: the same command on each, with its own --process_id (or --distributed alone
  # on a cluster JAX detects: SLURM, Open MPI, Cloud TPU)
  python launch.py --config=experiments/task.py:task=bmul --workdir=/shared/bmul \
      --coordinator_address=host0:1234 --num_processes=2 --process_id=0
"""

import json
import os
import shlex
import sys

from absl import app, flags, logging
from ml_collections import config_flags

HERE = os.path.dirname(os.path.abspath(__file__))

config_flags.DEFINE_config_file(
    "config", os.path.join(HERE, "experiments", "default.py"),
    "Experiment config file (experiments/<name>.py[:key=value,...], the keys its docstring "
    "lists); override fields with --config.a.b=v.",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Run folder (checkpoints, metrics, eval). Default: "
                    "runs/<config file name>[_<its :arg>], e.g. runs/default for the default "
                    "experiment.")
flags.DEFINE_enum("mode", "train", ["train", "eval", "visualize", "errors", "gradcheck"],
                  "train (then evaluate), eval only, visualize (pictures of one test example's "
                  "state over time, neural_gpu/visualize.py), errors (where a checkpoint's "
                  "answers go wrong, neural_gpu/debug.py) or gradcheck (finite differences "
                  "on the config's model).")
flags.DEFINE_integer("step", None, "eval, visualize, errors: checkpoint step (default: latest).")
flags.DEFINE_integer("length", None, "visualize: example length (default: the training maximum).")
flags.DEFINE_integer("example", 0, "visualize: which test example at that length (its index in "
                     "the evaluation).")
flags.DEFINE_string("kind", None, "visualize, errors: take the examples from this hard test set, "
                    "e.g. carry.")
flags.DEFINE_list("channels", None, "visualize: state channels to draw (default: the most "
                  "active ones).")
flags.DEFINE_integer("max_draw_length", 400, "visualize: refuse longer --length (pictures of "
                     "L steps by L positions).")
flags.DEFINE_list("lengths", None, "eval, errors: lengths to test (default: the config's "
                  "eval.lengths).")
flags.DEFINE_list("num_examples", None, "eval, errors: examples per length, one count for "
                  "every length or one per --lengths entry, e.g. 256,256,32 (default: from "
                  "config; errors: 64).")
flags.DEFINE_list("hard_kinds", None, "eval: hard test sets to add, e.g. carry,zeros "
                  "(default: the config's eval.hard_kinds).")
flags.DEFINE_integer("mc_dropout_samples", None, "eval: Monte Carlo dropout, the mean of this "
                     "many passes with the candidate's dropout and zoneout sampled, reported "
                     "beside the usual deterministic pass (default: the config's "
                     "eval.mc_dropout_samples; 0: off).")
flags.DEFINE_string("matmul_precision", None, "eval, errors: precision of the float32 matmuls, "
                    "a name of jax.default_matmul_precision: highest (float32), high, default "
                    "(on a recent NVIDIA GPU, TF32), BF16_BF16_F32... (default: the config's "
                    "eval.matmul_precision).")
flags.DEFINE_bool("best", False, "eval, visualize, errors: the checkpoint early stopping kept "
                  "(lowest validation error) instead of the latest.")
flags.DEFINE_bool("sweep", False, "Run every point of the config file's sweep() in its own "
                  "<workdir>/<index>_<name>/, then write summary.md/json there; "
                  "--config.* overrides apply to every point and win (neural_gpu/sweep.py).")
flags.DEFINE_string("seeds", None, "Seed study: train and evaluate the config once per seed "
                    "(0-9, 0,3,5 or 0-2,7) in <workdir>/seed_<N>/, then write seeds.md/json "
                    "there (neural_gpu/seeds.py).")
flags.DEFINE_integer("parallel", 1, "sweep or seed study: runs at a time, as separate processes.")
flags.DEFINE_bool("distributed", False, "Several hosts: call jax.distributed.initialize() with "
                  "JAX's cluster auto-detection (SLURM, Open MPI, Cloud TPU); the three flags "
                  "below, where given, override what it detects.")
flags.DEFINE_string("coordinator_address", None, "Several hosts: host:port of process 0, which "
                    "coordinates (with --num_processes and --process_id; same on every host).")
flags.DEFINE_integer("num_processes", None, "Several hosts: how many processes (hosts) in all.")
flags.DEFINE_integer("process_id", None, "Several hosts: this process's index, 0 to "
                     "num_processes - 1; process 0 writes the config, metrics and reports.")
FLAGS = flags.FLAGS


def fail(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(1)


def distributed_args() -> dict | None:
  """jax.distributed.initialize's arguments from the flags; None: a single process."""
  explicit = {"coordinator_address": FLAGS.coordinator_address,
              "num_processes": FLAGS.num_processes, "process_id": FLAGS.process_id}
  given = {k: v for k, v in explicit.items() if v is not None}
  if not FLAGS.distributed and not given:
    return None
  if not FLAGS.distributed and len(given) < 3:
    missing = ", ".join(f"--{k}" for k in explicit if k not in given)
    fail(f"several hosts need --coordinator_address, --num_processes and --process_id (missing "
         f"{missing}), or --distributed for JAX's cluster auto-detection")
  if FLAGS.sweep or FLAGS.mode == "gradcheck":
    fail(f"--{'sweep' if FLAGS.sweep else 'mode=gradcheck'} runs on one host; drop the "
         "--distributed/--coordinator_address/--num_processes/--process_id flags")
  n, i = FLAGS.num_processes, FLAGS.process_id
  if n is not None and n < 1 or i is not None and not 0 <= i < (n if n is not None else i + 1):
    fail(f"--process_id={i} must be in [0, --num_processes={n})")
  return given


# The flags that only some modes read; given to another mode they would be silently ignored.
MODE_FLAGS = {
    "step": ("eval", "visualize", "errors"), "best": ("eval", "visualize", "errors"),
    "lengths": ("eval", "errors"), "num_examples": ("eval", "errors"),
    "matmul_precision": ("eval", "errors"), "hard_kinds": ("eval",),
    "mc_dropout_samples": ("eval",), "kind": ("visualize", "errors"), "length": ("visualize",),
    "example": ("visualize",), "channels": ("visualize",), "max_draw_length": ("visualize",),
}


def check_mode_flags() -> None:
  for name, modes in MODE_FLAGS.items():
    if FLAGS[name].present and FLAGS.mode not in modes:
      hint = " (--lengths, with an s, gives eval's lengths)" if name == "length" else ""
      fail(f"--{name} is read by --mode={' or --mode='.join(modes)}, not --mode={FLAGS.mode}; "
           f"drop it{hint}")


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}; flags look like --workdir=DIR")
  check_mode_flags()
  distributed = distributed_args()  # checked before anything starts
  if FLAGS.sweep or FLAGS.seeds is not None or FLAGS.parallel != 1:
    # neither imports JAX: the runs are launch.py subprocesses
    from neural_gpu import seeds, sweep
    study = "--sweep" if FLAGS.sweep else "--seeds" if FLAGS.seeds is not None else None
    if study is None:
      fail("--parallel needs --sweep or --seeds")
    if FLAGS.sweep and FLAGS.seeds is not None:
      fail("--sweep and --seeds are two kinds of study; give one")
    if FLAGS.mode != "train":
      fail(f"{study} trains; drop --mode={FLAGS.mode}")
    launcher = os.path.abspath(__file__)
    try:
      if FLAGS.sweep:
        sweep.main(FLAGS["config"], FLAGS.workdir, FLAGS.parallel, launcher)
      else:
        record = seeds.main(FLAGS["config"], FLAGS.seeds, FLAGS.workdir, FLAGS.parallel,
                            launcher, shlex.join(["python", "launch.py", *sys.argv[1:]]))
        failed = [r["seed"] for r in record["rows"] if r["status"] != "ok"]
        if failed:
          fail(f"seeds {','.join(map(str, failed))} did not finish; seeds.md says why")
    except ValueError as e:
      fail(str(e).splitlines()[0])
    except KeyboardInterrupt:  # Ctrl-C or kill: the running points were stopped
      fail(f"{study} interrupted; re-run the same command to resume")
    return
  if FLAGS.mode in ("eval", "errors", "visualize") and any(
      a.startswith("--config") for a in sys.argv[1:]):
    fail(f"--mode={FLAGS.mode} reads the run's own config.json, so --config... would be "
         "ignored; drop it (evaluation settings are flags: --lengths, --num_examples, "
         "--hard_kinds, --mc_dropout_samples, --matmul_precision)")
  from neural_gpu import sweep  # neither imports JAX: a refusal here costs no start-up
  from neural_gpu import workdir as workdir_lib
  workdir = FLAGS.workdir or sweep.default_workdir(FLAGS["config"])
  kind = workdir_lib.folder_kind(workdir)
  if kind in ("a seed study", "a sweep"):
    first = sorted(d for d in os.listdir(workdir) if os.path.isdir(os.path.join(workdir, d)))
    fail(f"{workdir} holds {kind}; give one of its runs, e.g. --workdir="
         f"{os.path.join(workdir, first[0] if first else 'seed_0')}, or re-run the study's own "
         "command (its seeds.md or summary.md)")
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  from neural_gpu import cpu_tuning
  cpu_tuning.tune_malloc()  # before JAX starts its threads (they pick malloc arenas then)
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                        os.path.join(os.path.expanduser("~"), ".cache", "neural_gpu_jax"))
  import jax  # after the environment is set, so the persistent compilation cache applies
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  if distributed is not None:  # before any JAX computation, as jax.distributed requires
    jax.distributed.initialize(**distributed)
  from neural_gpu import evaluate, sharding, train

  try:
    lengths = [int(x) for x in FLAGS.lengths] if FLAGS.lengths else None  # eval, errors
  except ValueError:
    fail(f"--lengths={','.join(FLAGS.lengths)}: give integers, e.g. --lengths=41,401")
  try:  # one count for every length, or one per length (evaluate.check_request)
    num_examples = [int(x) for x in FLAGS.num_examples] if FLAGS.num_examples else None
  except ValueError:
    fail(f"--num_examples={','.join(FLAGS.num_examples)}: give integers, one for every length "
         "or one per --lengths entry, e.g. --num_examples=256,32")
  try:
    if FLAGS.mode == "gradcheck":
      from neural_gpu import debug
      result = debug.gradient_check(FLAGS.config)
      print(json.dumps(result))
      sys.exit(0 if result["ok"] else 1)
    if FLAGS.mode == "errors":
      from neural_gpu import debug
      print(debug.format_error_positions(debug.error_positions(
          workdir, FLAGS.step, lengths, num_examples or 64, FLAGS.best, FLAGS.kind or None,
          FLAGS.matmul_precision)))
      return
    if FLAGS.mode == "visualize":
      from neural_gpu import visualize
      channels = [int(c) for c in FLAGS.channels] if FLAGS.channels else None
      for path in visualize.visualize(workdir, FLAGS.step, FLAGS.length, FLAGS.example,
                                      FLAGS.kind, channels, FLAGS.best, FLAGS.max_draw_length):
        print(f"wrote {path}")
      return
    config = workdir_lib.load_config(workdir) if FLAGS.mode == "eval" else FLAGS.config
    print(sharding.DataParallel.from_config(config, FLAGS.mode == "train").describe(), flush=True)
    if FLAGS.mode == "eval":
      if FLAGS.mc_dropout_samples is None and config.eval.get("mc_dropout_samples", 0) > 0:
        print(f"also {config.eval.mc_dropout_samples} Monte Carlo passes per example (the run's "
              "eval.mc_dropout_samples; --mc_dropout_samples=0: the deterministic pass only)",
              flush=True)
      report = evaluate.evaluate_checkpoint(workdir, FLAGS.step, lengths, num_examples,
                                            config=config, best=FLAGS.best,
                                            hard_kinds=FLAGS.hard_kinds,
                                            mc_samples=FLAGS.mc_dropout_samples,
                                            matmul_precision=FLAGS.matmul_precision)
    else:
      report = train.train_and_evaluate(FLAGS.config, workdir)
  except (ValueError, train.TrainingError) as e:
    fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
  print(evaluate.format_table(report))
  if jax.process_index() == 0:  # the only writer
    print(f"wrote {workdir_lib.eval_report_path(workdir, report['step'])}")


def check_config_file(argv) -> None:
  """A --config that names no Python file fails here, in one line: ml_collections would raise
  a traceback of its own while loading it."""
  for i, arg in enumerate(argv[1:], 1):
    if arg == "--config" and i + 1 < len(argv):
      value = argv[i + 1]
    elif arg.startswith("--config="):
      value = arg.split("=", 1)[1]
    else:
      continue
    path = value.split(":", 1)[0]
    reason = ("no such file" if not os.path.isfile(path) else
              "not a Python config file" if not path.endswith(".py") else None)
    if reason:
      fail(f"--config={value}: {reason}; give one of experiments/*.py, e.g. "
           "--config=experiments/default.py (its docstring lists its :args)")


def parse_flags(argv):
  """absl parsing, but a bad flag or config override is one line and exit 1, not a traceback."""
  check_config_file(argv)
  try:
    return FLAGS(argv)
  except (SyntaxError, ImportError, OSError) as e:  # the config file itself does not load
    fail(f"the config file does not load ({type(e).__name__}: {str(e).splitlines()[0]}); fix it "
         "or give another --config")
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    message = str(e.args[0] if e.args else type(e).__name__)
    message = " ".join(message.replace("\\n", " ").replace("\\'", "").split())
    if "Traceback" in message:  # a config file's get_config raised: its own message is enough
      message = message.rsplit("Error: ", 1)[-1]
    # A locked ConfigDict's missing field arrives as a KeyError, bare or wrapped: name the
    # override that asked for it.
    missing = next((x for x in (e, *e.args) if isinstance(x, KeyError)), None)
    field = str(missing.args[0]).strip("'\"") if missing is not None and missing.args else None
    for arg in argv[1:]:
      path = arg.split("=", 1)[0].removeprefix("--config.")
      if arg.startswith("--config.") and path.split(".")[-1] == field:
        hint = {"model": " (each model has its own fields: README, 'Models')",
                "task": " (a task's parameters are set in the config file or its :arg, e.g. "
                        "--config=experiments/task.py:task=badd,layout=stacked)"
                }.get(path.split(".")[0], "")
        fail(f"--config.{path}: the config has no field {path}{hint}; check the field names "
             "in the config file")
    if message.startswith("config arg "):  # experiments/base.py parse_arg: says what to do
      fail(message)
    if message.startswith("flag --"):  # a flag's own value, not a config field
      fail(f"{message} (python launch.py --help lists the flags and their values)")
    fail(f"bad flag or config override ({message}); check the field names in the config file")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
