"""Every model on the same tasks, tested far beyond the training length (SPEC 4, 5; CPU scale).

Arg (named, both optional): model=gru, task=copy. As a config file it is one point of the grid;
as a sweep (--sweep), a given key fixes that axis and the other runs over MODELS or TASKS.

  python launch.py --config=experiments/compare.py --workdir=runs/compare --sweep   # 40 points
  python launch.py --config=experiments/compare.py:model=gru --workdir=runs/compare_gru --sweep
  python launch.py --config=experiments/compare.py:model=gru,task=reverse --workdir=runs/gru_reverse
  # every point shorter (command-line overrides win over each point's own values):
  python launch.py --config=experiments/compare.py --workdir=runs/compare --sweep \
      --config.train.num_steps=200

Each point trains in <workdir>/<index>_model=<m>_task=<t>/ (neural_gpu/sweep.py: resumes when
re-run, skipped once finished); <workdir>/summary.md and summary.json list the sequence and symbol
error of every point at 1x, 10x and 100x the training length. The MLPs only exist at their one
training length, so they show "n/a" beyond it (SPEC 1: report it, do not hide it).

Default scale, picked for 2 shared CPU cores (docs/compare.md has the table and the timings):
- tasks copy, reverse, dup (binary alphabet), badd, bmul; train length 21 (10-bit operands);
- models neural_gpu (m=24, NGPU curriculum), dngpu (m=48, all bins 7/11/15/21 every step), mlp
  and highway_mlp (fixed length 21), rnn, gru, lstm, highway (hidden 128, read-then-emit);
- batch 32, Adam (DNGPU: AdaMax); steps per model in STEPS;
- test lengths 21, 201 and 2001 with 128, 32 and 4 examples; the 100x length only for models
  whose evaluation is cheap there (LONG_EVAL_MODELS: the recurrent nets are linear in the length,
  DNGPU is 1-D; the CGRU Neural GPU costs about 1 TFLOP per example at 2001, a quarter of SPEC 6's
  figure for 4001: `launch.py --mode=eval --lengths=21,201,2001` adds it for one point).
These are short runs: a model that fails here may well learn with the paper's budget.
"""

from experiments import base

MODELS = ("neural_gpu", "dngpu", "mlp", "highway_mlp", "rnn", "gru", "lstm", "highway")
TASKS = ("copy", "reverse", "dup", "badd", "bmul")
TRAIN_LENGTH = 21
LENGTHS = (21, 201, 2001)  # 1x, 10x, 100x (in operand digits for badd/bmul: 10, 100, 1000)
EXAMPLES = (128, 32, 4)
LONG_EVAL_MODELS = ("dngpu", "mlp", "highway_mlp", "rnn", "gru", "lstm", "highway")
# Training steps per model at the default scale (14 s to 150 s per point on the loaded 2 cores).
STEPS = {"neural_gpu": 400, "dngpu": 300, "mlp": 1000, "highway_mlp": 1000,
         "rnn": 1000, "gru": 1000, "lstm": 1000, "highway": 1000}


def get_config(arg=None):
  """The config of one point of the grid."""
  a = base.parse_arg(arg, model="gru", task="copy")
  c = base.get_config(task=a.task, model=a.model)
  if a.model == "dngpu":  # docs/compare.md was measured with this protocol (not the reference's)
    base.exact_length_protocol(c)
  c.train.update(num_steps=STEPS.get(a.model, 1000), batch_size=32, max_length=TRAIN_LENGTH,
                 log_every=25, schedule_every=100)
  # Short runs: decide on the NGPU curriculum every 50 steps; the DNGPU bins up to length 21.
  c.curriculum.update(every_steps=50, bins=(7, 11, 15, 21))
  c.checkpoint.every_steps = 100
  long_eval = a.model in LONG_EVAL_MODELS
  c.eval.update(lengths=LENGTHS if long_eval else LENGTHS[:-1],
                num_examples=EXAMPLES if long_eval else EXAMPLES[:-1])
  return c


def sweep(arg=None):
  """One point per (model, task); a model or task given in the arg fixes that axis."""
  a = base.parse_arg(arg, model="", task="")
  return [{"arg": f"model={m},task={t}"} for m in ([a.model] if a.model else MODELS)
          for t in ([a.task] if a.task else TASKS)]
