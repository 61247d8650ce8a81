"""The canonical config every experiment starts from; experiment files override parts of it.

Sections: seed, task (name + task params), model (name + model params), train, optimizer,
curriculum, checkpoint, eval. Each field here can be overridden on the command line, e.g.
--config.train.num_steps=500; a misspelt field fails loudly (the config is locked).

A config file's `:arg` is always named arguments, comma-separated, as in big_vision
(`--config=experiments/task.py:task=badd,model=dngpu`); each file reads them with `parse_arg`
and lists them in its docstring.
"""

import ml_collections

# Per-model settings from the papers, scaled to a 2-core CPU.
MODEL_DEFAULTS = {
    "neural_gpu": dict(nmaps=24, num_layers=2, dropout=0.0, relax_copies=1, height=4,
                       cutoff=1.2, conv_impl="auto", remat=False),
    # The reference protocol (LUMII-Syslab/DNGPU): one dropout rate (keep 0.9) on the embedded
    # input and the candidate, every example run for its bin's width in steps.
    "dngpu": dict(nmaps=48, dropout=0.1, input_dropout=0.1, extra_steps=0.0, bin_steps=True,
                  zoneout=0.0),
    # Baselines at CPU scale. The MLPs' fixed_length is tied to train.max_length below; the
    # recurrent nets keep the 'fixed' curriculum (in a 400-step GRU copy check at length 21 it
    # beat 'ngpu', which was still at length 6).
    "mlp": dict(depth=2, width=256, activation="relu", dropout=0.0, norm="none",
                weight_init="lecun_normal"),
    "highway_mlp": dict(depth=4, width=128, activation="relu", dropout=0.0, norm="none",
                        weight_init="lecun_normal", gate_bias=-1.0),
    **{name: dict(hidden=128, num_layers=1, residual=False, layer_norm=False, dropout=0.0)
       for name in ("rnn", "gru", "lstm")},
    "highway": dict(hidden=128, depth=2, num_layers=1, residual=False, layer_norm=False,
                    dropout=0.0, gate_bias=-1.0),
}
OPTIMIZER_DEFAULTS = {
    "neural_gpu": dict(name="adam", learning_rate=1e-3, eps=1e-4, clip_norm=1.0),
    # The reference's AdaMax (adamax.py): no bias correction, each gradient element clipped to
    # 1.2x its running max, no global-norm clip, noise lr * 1e-4; lr 0.01 * 48 / m.
    "dngpu": dict(name="adamax", learning_rate=1e-2, eps=1e-8, clip_norm=0.0,
                  b2_schedule="dngpu", clip_multiplier=1.2, bias_correction=False,
                  grad_noise_lr=1e-4),
}
CURRICULUM_DEFAULTS = {"neural_gpu": "ngpu", "dngpu": "all_bins"}


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """The named arguments of a config file's `:arg`, e.g. 'task=badd,model=dngpu' (big_vision's
  config argument style).

  defaults: every valid key with its default; a given value takes the default's type (int,
  float, bool as true/false/1/0, str; a None default keeps the string). Returns a ConfigDict of
  every key. Raises ValueError (one line, listing the valid keys) on an unknown key, a part
  without '=', or a value that does not parse as the default's type.
  """
  valid = ", ".join(defaults) or "none (this file takes no arg)"
  values = dict(defaults)
  for part in (arg or "").split(","):
    if not part.strip():
      continue
    key, eq, text = (x.strip() for x in part.partition("="))
    if not eq or key not in defaults:
      problem = f"'{part.strip()}' is not key=value" if not eq else f"unknown key {key!r}"
      raise ValueError(f"config arg {arg!r}: {problem}; valid keys: {valid} "
                       "(e.g. --config=experiments/task.py:task=badd,model=dngpu)")
    kind = type(defaults[key])
    try:
      if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
          raise ValueError(text)
        values[key] = text.lower() in ("true", "1")
      else:
        values[key] = text if defaults[key] is None else kind(text)
    except ValueError:
      raise ValueError(f"config arg {arg!r}: {key}={text!r} is not a {kind.__name__}") from None
  return ml_collections.ConfigDict(values)


def get_config(task: str = "badd", model: str = "neural_gpu", **task_params):
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.task = dict(name=task, **task_params)
  c.model = dict(name=model, **MODEL_DEFAULTS.get(model, {}))
  c.train = dict(
      num_steps=2000,
      batch_size=32,  # the global batch: split over the devices, so a multiple of their count
      num_devices=0,  # data parallelism over this many devices (0: all; neural_gpu/sharding.py)
      max_length=41,
      log_every=50,
      schedule_every=200,  # lr decay on plateau and saturation-weight updates
      loss="softmax_cross_entropy",  # a name of neural_gpu/losses.py
      label_smoothing=0.0,
      input_noise=0.0,  # probability of replacing each input symbol by a random one (training)
      # > 0: each step also runs every bin with all dropout off and adds this times that pass's
      # loss to the objective (metric dropout_free_loss), so the deterministic pass that
      # evaluation uses is trained too; costs a second forward and backward pass.
      dropout_free_loss_weight=0.0,
      # Share of each training batch drawn from the task's hard generators (e.g. badd 'carry':
      # long carry chains, which random operands of <= 20 bits rarely contain), split over
      # hard_kinds ("carry,zeros"; empty: all the task has), from hard_start_step on.
      hard_fraction=0.0,
      hard_kinds="",
      hard_start_step=0,  # mixed in from this step on (random inputs only before it)
      # Share of each batch drawn at a random shorter valid length, padded (the DNGPU paper
      # trains every bin with 5% shorter examples: 0.05). With a pool, the share of extra
      # items each bin's pool takes from random smaller bins.
      shorter_fraction=0.0,
      # > 0: train on a finite pool of up to this many unique examples per length, as the
      # DNGPU reference does (10000); 0: a fresh example every time (input_pipeline.py).
      pool_size=0,
      # The loss and training errors count every position of the padded batch (PAD targets
      # included, as the DNGPU reference's per-bin mean); False: real positions only.
      loss_on_padding=False,
      # Early stopping when > 0: at each checkpoint, validate at the maximal length, keep the
      # best checkpoint in <workdir>/best, stop after this many checkpoints without improvement.
      early_stopping_patience=0,
      validation_examples=128,
      overfit_one_batch=False,  # debugging: train on the batch of step 0 again and again
      saturation_weight=1e-3,  # DNGPU start value; re-estimated at every curriculum decision
      pull_start=5e-4,  # relaxation pull (neural_gpu with relax_copies > 1)
      pull_growth=1.2,
      pull_max=0.1,
      plateau_rule="ngpu",  # or "dngpu", "dngpu_reference"
      plateau_patience=3,
      plateau_decay=0.98,
      min_lr_scale=0.0,
      # float32 matmul precision of the training step (evaluate.MATMUL_PRECISIONS); "default":
      # JAX's, as when none is set (float32 on a CPU, TF32 on recent NVIDIA GPUs)
      matmul_precision="default",
  )
  c.optimizer = {**dict(grad_noise=0.0, grad_noise_decay=0.55, grad_noise_lr=0.0,
                        clip_value=0.0, schedule="constant", decay_start=0, decay_steps=1000,
                        decay_rate=0.5, warmup_steps=500, b1=0.9, b2=0.999, momentum=0.9,
                        decay=0.9, weight_decay=0.0, b2_schedule="constant", clip_multiplier=0.0,
                        bias_correction=True,
                        # the exponential schedule's floor; None: no floor
                        min_learning_rate=ml_collections.config_dict.placeholder(float)),
                 **OPTIMIZER_DEFAULTS.get(model, dict(name="adam", learning_rate=1e-3,
                                                      eps=1e-4, clip_norm=1.0))}
  # Every curriculum's fields are present, so --config.curriculum.name=... can switch.
  c.curriculum = dict(name=CURRICULUM_DEFAULTS.get(model, "fixed"), every_steps=200,
                      start_length=6, min_length=3, threshold=0.15,
                      bins=(8, 12, 16, 20, 25, 28, 31, 36, 41), mixed_bins=False)
  if model == "dngpu":  # the reference protocol (SPEC 1, "Training data and bins")
    c.curriculum.mixed_bins = True  # a bin holds every length up to its width
    c.train.update(pool_size=10000, shorter_fraction=0.05, loss_on_padding=True,
                   plateau_rule="dngpu_reference", plateau_patience=2, plateau_decay=0.7,
                   min_lr_scale=1 / 60)
  if model in ("mlp", "highway_mlp"):  # one weight per position: train at the one length it has
    c.model.fixed_length = c.train.get_ref("max_length")  # follows --config.train.max_length
    c.curriculum.name = "fixed"
  # keep_every_steps: checkpoints at multiples of it are never deleted (0: only the latest
  # max_to_keep), so that milestones such as 2k, 5k, 10k steps can be evaluated afterwards.
  c.checkpoint = dict(every_steps=200, max_to_keep=3, keep_every_steps=0)
  # hard_kinds: the task's hard test sets (e.g. "carry,propagate,zeros" for addition) to report
  # too, at the same lengths; empty: random inputs only.
  # mc_dropout_samples: also evaluate with Monte Carlo dropout, the mean softmax of this many
  # passes with the candidate's dropout and zoneout sampled (dngpu; 0: off, the deterministic
  # pass only).
  # matmul_precision: of the evaluation's float32 matmuls (evaluate.MATMUL_PRECISIONS);
  # "highest" is float32 on every backend.
  c.eval = dict(lengths=(41, 401), num_examples=(256, 64), hard_kinds="", mc_dropout_samples=0,
                matmul_precision="highest")
  return c


def exact_length_protocol(c):
  """This project's DNGPU protocol before the reference's (used by runs up to 2026-11-29, kept
  so they reproduce): each bin one exact length run for its own length in steps, fresh
  examples, loss over real positions, dropout on the candidate only, AdaMax with bias
  correction and a global-norm clip of 1.0, no gradient noise, the plateau history restarted
  after each decay. Returns c, changed in place."""
  c.curriculum.mixed_bins = False
  c.model.update(input_dropout=0.0, bin_steps=False)
  c.train.update(pool_size=0, shorter_fraction=0.0, loss_on_padding=False, plateau_rule="dngpu")
  c.optimizer.update(clip_norm=1.0, clip_multiplier=0.0, bias_correction=True, grad_noise_lr=0.0)
  return c
