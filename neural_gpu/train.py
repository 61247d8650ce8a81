"""The trainer: `train_and_evaluate(config, workdir)`.

Device state is a `TrainState` pytree (step, params, optimizer state, mutable model collections).
Host state is a `HostState`, one typed part per rule that updates it (the curriculum's, the
learning-rate schedule's, the model's training rules: the NGPU relaxation, the DNGPU saturation
weight; early stopping), saved in checkpoints as the JSON dict `HostState.to_json` gives. Both go
into every checkpoint, and every random draw of step t comes from fold_in(key(config.seed), t),
so a resumed run continues exactly as if it had never stopped.
"""

import dataclasses
import math
import time
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from neural_gpu import checkpoint as ckpt_lib
from neural_gpu import curriculum as curriculum_lib
from neural_gpu import evaluate as eval_lib
from neural_gpu import input_pipeline
from neural_gpu import losses
from neural_gpu import metrics as metrics_lib
from neural_gpu import optimizers, resume, visualize
from neural_gpu import sharding
from neural_gpu import state as state_lib
from neural_gpu import workdir as workdir_lib
from neural_gpu.metrics import MetricWriter, Progress
from neural_gpu.models import dngpu, ngpu

TRAIN_STREAM = input_pipeline.TRAIN_STREAM
CURRICULUM_EVAL_STREAM = 2
VALIDATION_STREAM = 3


TrainingError = workdir_lib.TrainingError
TrainState = state_lib.TrainState
load_config = workdir_lib.load_config  # a run folder's config, as tests read it back


class Window(NamedTuple):
  """Sums over the steps since the last schedule decision (train.schedule_every)."""
  loss: float = 0.0
  saturation: float = 0.0
  count: int = 0


class Schedule(NamedTuple):
  """The learning-rate decay on plateau (decay_on_plateau): its scale, loss history, window."""
  lr_scale: float
  loss_history: list
  window: Window


class EarlyStopping(NamedTuple):
  """The best validation error so far, at which step, checkpoints since, and whether stopped."""
  step: int = -1
  error: float = 2.0
  stale: int = 0
  stopped: bool = False


@dataclasses.dataclass(frozen=True)
class HostState:
  """Everything the host's rules carry from step to step; each part is replaced, never mutated.

  In checkpoints it is the flat JSON dict of `to_json` (the form every run so far has saved):
  curriculum, lr_scale, pull, tied, saturation_weight, loss_history, window, log_window, best.
  """
  curriculum: dict  # the curriculum's own JSON state (curriculum.py)
  schedule: Schedule
  relaxation: ngpu.Relaxation  # used when the model is relaxed (ngpu.RelaxationRule)
  saturation: dngpu.Saturation  # used when the model has a saturation cost (DNGPU)
  log_window: dict  # every step since the last metrics row (metrics.new_window)
  best: EarlyStopping

  replace = dataclasses.replace

  def to_json(self) -> dict:
    return {"curriculum": self.curriculum, "lr_scale": self.schedule.lr_scale,
            "pull": self.relaxation.pull, "tied": self.relaxation.tied,
            "saturation_weight": self.saturation.weight,
            "loss_history": list(self.schedule.loss_history),
            "window": self.schedule.window._asdict(), "log_window": self.log_window,
            "best": self.best._asdict()}

  @classmethod
  def from_json(cls, saved: dict, default: "HostState") -> "HostState":
    """A checkpoint's host dict; entries it lacks (added since it was written) keep default's."""
    d = {**default.to_json(), **saved}
    return cls(curriculum=d["curriculum"],
               schedule=Schedule(d["lr_scale"], list(d["loss_history"]), Window(**d["window"])),
               relaxation=ngpu.Relaxation(d["pull"], d["tied"]),
               saturation=dngpu.Saturation(d["saturation_weight"]),
               log_window=d["log_window"], best=EarlyStopping(**d["best"]))


def masked_loss(logits, targets, lengths, loss: str = losses.DEFAULT,
                label_smoothing: float = 0.0, on_padding: bool = False):
  """The loss `loss` (a neural_gpu.losses name) and the error rates of a batch.

  logits (B, W, V) float32, targets (B, W) int, lengths (B,) int. The loss and errors count the
  real positions (< lengths) of each row, or with `on_padding` every position of the padded
  width, PAD targets included, as the DNGPU reference's per-bin loss does. label_smoothing is
  passed only when non-zero (losses without it then refuse it). Returns (loss, sequence error,
  symbol error), float32 scalars.
  """
  positions = jnp.arange(targets.shape[1])[None, :]
  real = jnp.ones(targets.shape, jnp.float32) if on_padding else (
      positions < lengths[:, None]).astype(jnp.float32)
  options = {"label_smoothing": label_smoothing} if label_smoothing else {}
  value = losses.get(loss)(logits, targets, real, **options)
  wrong = losses.wrong_positions(logits, targets, real).astype(jnp.float32)
  seq_err = jnp.mean(jnp.any(wrong > 0, axis=1).astype(jnp.float32))
  sym_err = jnp.sum(wrong) / jnp.maximum(jnp.sum(real), 1.0)
  return value, seq_err, sym_err


def corrupt_inputs(inputs, key, rate: float, vocab_size: int):
  """Input noise: each non-PAD input symbol becomes a random non-PAD symbol with prob. `rate`."""
  flip_key, symbol_key = jax.random.split(key)
  flip = jax.random.bernoulli(flip_key, rate, inputs.shape) & (inputs > 0)
  random_symbols = jax.random.randint(symbol_key, inputs.shape, 1, vocab_size, inputs.dtype)
  return jnp.where(flip, random_symbols, inputs)


def make_train_step(config, model, optimizer, max_traces: int | None = None,
                    out_sharding=None):
  """Returns the jit'd step (state, batches, hyper) -> (state, metrics).

  batches: a tuple of (inputs, targets, lengths), one per length bin of the step (one compile
  per distinct tuple of shapes). hyper: dict of float scalars the host may change between steps
  (lr_scale, tied, penalty_weights: {penalty name: weight}) so changing them never recompiles.
  Each penalty a model outputs (ModelOutput.penalties) or its training rule adds is weighted by
  its name. out_sharding:
  where the new state and metrics go (sharding.DataParallel.replicated; None: XLA chooses).
  config.train.matmul_precision: the step's float32 matmuls are traced under
  jax.default_matmul_precision of it (evaluate.MATMUL_PRECISIONS; ValueError otherwise).
  """
  root_key = jax.random.key(config.seed)
  opt = config.optimizer
  relaxation = ngpu.RelaxationRule.from_config(config)
  loss_name = config.train.loss
  losses.get(loss_name)  # an unknown name fails here, listing the valid ones
  smoothing = config.train.label_smoothing
  on_padding = config.train.loss_on_padding
  input_noise = config.train.input_noise
  # A second pass with every dropout off, whose loss joins the objective: it trains the
  # deterministic read-out that evaluation uses alongside the dropout pass (the gap between the
  # two is what expectation-linear dropout, Ma et al. 2017, regularizes).
  dropout_free_weight = config.train.dropout_free_loss_weight
  if not (math.isfinite(dropout_free_weight) and dropout_free_weight >= 0):
    raise TrainingError(f"train.dropout_free_loss_weight must be a finite number >= 0, got "
                        f"{dropout_free_weight}")
  if dropout_free_weight and getattr(model, "zoneout", 0.0):
    # The free pass runs in training mode, where zoneout draws masks: it would not be the
    # deterministic pass (zoneout's expectation) that evaluation uses.
    raise TrainingError("train.dropout_free_loss_weight does not combine with model.zoneout; "
                        "set one of them to 0")
  dropout_free_model = model.clone(**{name: 0.0 for name in ("dropout", "input_dropout")
                                      if hasattr(model, name)})
  base_lr = optimizers.schedule(opt)
  precision = config.train.matmul_precision
  eval_lib.check_matmul_precision(precision, "train.matmul_precision")

  def loss_fn(params, model_state, batches, key, hyper):
    totals = {"loss": 0.0, "seq_err": 0.0, "sym_err": 0.0}
    penalties = {}
    new_state = model_state
    for i, (inputs, targets, lengths) in enumerate(batches):
      variables = {"params": params, **new_state}
      rngs = {"dropout": jax.random.fold_in(key, i)}
      if input_noise:
        inputs = corrupt_inputs(inputs, jax.random.fold_in(rngs["dropout"], 1 << 30),
                                input_noise, model.vocab_size)
      if new_state:
        out, new_state = model.apply(variables, inputs, lengths, train=True, rngs=rngs,
                                     mutable=list(new_state))
      else:
        out = model.apply(variables, inputs, lengths, train=True, rngs=rngs)
      loss, seq_err, sym_err = masked_loss(out.logits, targets, lengths, loss_name, smoothing,
                                           on_padding)
      for name, value in zip(("loss", "seq_err", "sym_err"), (loss, seq_err, sym_err)):
        totals[name] += value / len(batches)
      if dropout_free_weight:
        free = dropout_free_model.apply(variables, inputs, lengths, train=True, rngs=rngs,
                                        mutable=list(new_state) if new_state else False)
        free = free[0] if new_state else free  # its state updates are the dropout pass's
        free_loss = masked_loss(free.logits, targets, lengths, loss_name, smoothing,
                                on_padding)[0]
        totals["dropout_free_loss"] = (totals.get("dropout_free_loss", 0.0)
                                       + free_loss / len(batches))
      for name, value in out.penalties.items():
        penalties[name] = penalties.get(name, 0.0) + value / len(batches)
    if relaxation:
      penalties.update(relaxation.penalties(params))
    objective = totals["loss"] + dropout_free_weight * totals.get("dropout_free_loss", 0.0)
    for name, value in penalties.items():
      objective += hyper["penalty_weights"][name] * value
    return objective, (new_state, {**totals, **penalties})

  def train_step(state, batches, hyper):
    key = jax.random.fold_in(jax.random.fold_in(root_key, TRAIN_STREAM), state.step)
    model_key, noise_key = jax.random.split(key)
    grads, (model_state, metrics) = jax.grad(loss_fn, has_aux=True)(
        state.params, state.model_state, batches, model_key, hyper)
    if opt.grad_noise:
      grads = optimizers.gradient_noise(grads, noise_key, state.step, opt.grad_noise,
                                        opt.grad_noise_decay)
    if opt.grad_noise_lr:  # the DNGPU reference's noise, proportional to the lr
      lr = base_lr(state.step) * hyper["lr_scale"]
      grads = optimizers.lr_gradient_noise(grads, jax.random.fold_in(noise_key, 1), lr,
                                           opt.grad_noise_lr)
    metrics["grad_norm"] = optax.tree.norm(grads)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    updates = jax.tree.map(lambda u: u * hyper["lr_scale"], updates)
    params = jax.tree.map(lambda p, u: p + u, state.params, updates)
    if relaxation:
      params = relaxation.after_update(params, hyper["tied"])
    metrics["param_norm"] = optax.tree.norm(params)
    return TrainState(state.step + 1, params, opt_state, model_state), metrics

  if max_traces is not None:  # tests prove "one compile per bucket" with this
    train_step = chex.assert_max_traces(train_step, n=max_traces)

  def step_at_precision(state, batches, hyper):
    with jax.default_matmul_precision(precision):  # read as each dot is traced
      return train_step(state, batches, hyper)

  return jax.jit(step_at_precision, out_shardings=out_sharding)


def decay_on_plateau(c, lr_scale: float, history: list, loss: float) -> tuple[float, list]:
  """Multiplies the learning rate by c.plateau_decay when the loss stops improving.

  'ngpu' rule: the loss is worse than at each of the last `plateau_patience` decisions.
  'dngpu' rule: the best of the last `plateau_patience` is worse than the best before them;
  the history then restarts. 'dngpu_reference': the same test without the restart, as the
  DNGPU reference (DNGPU_trainer.py, patience 2: min(last two) > min(last three)) does.
  Never below c.min_lr_scale.
  """
  patience, rule = c.plateau_patience, c.plateau_rule
  history = history + [loss]
  if rule == "ngpu":
    stalled = len(history) > patience and loss > max(history[-patience - 1:-1])
    history = history[-patience:]
  elif rule == "dngpu":
    stalled = len(history) > patience and min(history[-patience:]) > min(history)
    history = [] if stalled else history[-patience - 1:]
  elif rule == "dngpu_reference":
    history = history[-patience - 1:]
    stalled = len(history) > patience and min(history[-patience:]) > min(history)
  else:
    raise ValueError(f"unknown train.plateau_rule {rule!r}; valid: ngpu, dngpu, dngpu_reference")
  if stalled:
    lr_scale = max(lr_scale * c.plateau_decay, c.min_lr_scale)
  return lr_scale, history


def hard_kinds(config, subtasks) -> list[tuple[str, ...]]:
  """Per task, the hard example kinds mixed into training (train.hard_fraction of each batch);
  checked here so that a wrong name fails before anything is written."""
  fraction = config.train.hard_fraction
  if not 0.0 <= fraction <= 1.0:
    raise TrainingError(f"train.hard_fraction must be in [0, 1], got {fraction}")
  if not fraction:
    return [() for _ in subtasks]
  asked = tuple(k for k in config.train.hard_kinds.split(",") if k)
  kinds = []
  for task in subtasks:
    if not task.hard_kinds:
      raise TrainingError(f"task {task.name} has no hard examples; set train.hard_fraction=0")
    unknown = [k for k in asked if k not in task.hard_kinds]
    if unknown:
      raise TrainingError(f"task {task.name} has no hard kind {unknown[0]!r}; "
                          f"valid train.hard_kinds: {', '.join(task.hard_kinds)}")
    kinds.append(asked or task.hard_kinds)
  return kinds


class Trainer:
  """Holds everything one run needs; `run()` trains to config.train.num_steps."""

  def __init__(self, config, workdir: str, max_traces: int | None = None):
    workdir_lib.check_counts(config)  # before anything is written
    self.config, self.workdir = config, workdir
    self.task = state_lib.build_task(config)
    self.subtasks = getattr(self.task, "subtasks", [self.task])
    self.model = state_lib.build_model(config, self.task)
    self.optimizer = optimizers.make(config.optimizer)
    self.curriculum = curriculum_lib.get(config.curriculum, self.task, config.train.max_length)
    self.max_length = self.curriculum.max_length
    self.buckets = curriculum_lib.make_buckets(self.max_length, self.curriculum.extra_buckets())
    self.hard_kinds = hard_kinds(config, self.subtasks)
    self.pipeline = input_pipeline.InputPipeline(config, self.subtasks, self.curriculum,
                                                 self.buckets, self.hard_kinds)
    self.dp = sharding.DataParallel.from_config(config, training=False)  # batches split over it
    self.relaxation = ngpu.RelaxationRule.from_config(config)
    self.train_step = make_train_step(config, self.model, self.optimizer, max_traces,
                                      self.dp.replicated)
    self.error_fn = eval_lib.make_error_fn(self.model, self.dp.replicated,
                                           matmul_precision=config.eval.matmul_precision)

  # -- state -------------------------------------------------------------------------------
  def init_state(self) -> TrainState:
    return self.dp.replicate(state_lib.init_state(self.config, self.model, self.optimizer,
                                                  self.max_length))

  def init_host(self) -> HostState:
    return HostState(
        curriculum=self.curriculum.init_state(),
        schedule=Schedule(lr_scale=1.0, loss_history=[], window=Window()),
        relaxation=ngpu.Relaxation(pull=self.config.train.pull_start, tied=0.0),
        saturation=dngpu.Saturation(weight=self.config.train.saturation_weight),
        log_window=metrics_lib.new_window(),
        best=EarlyStopping())

  def hyper(self, host: HostState) -> dict:
    return self.dp.replicate({
        "lr_scale": np.float32(host.schedule.lr_scale),
        "tied": np.float32(host.relaxation.tied),
        "penalty_weights": {"saturation": np.float32(host.saturation.weight),
                            ngpu.RelaxationRule.penalty: np.float32(host.relaxation.pull)}})

  # -- data --------------------------------------------------------------------------------
  def batches(self, step: int, host: HostState):
    return self.pipeline.batches(step, host.curriculum)

  # -- host-side schedule ----------------------------------------------------------------
  def curriculum_errors(self, state: TrainState, host: HostState, step: int) -> list[float]:
    """Sequence error on a fresh batch at each (task, length) the curriculum asks about."""
    variables = {"params": state.params, **state.model_state}
    errors = []
    for i, (index, length) in enumerate(self.curriculum.probes(host.curriculum)):
      seed = eval_lib.data_seed(self.config.seed, CURRICULUM_EVAL_STREAM, step, i)
      any_wrong, _ = eval_lib.count_errors(self.error_fn, variables,
                                           *self.pipeline.fresh_batch(index, seed, length), self.dp)
      errors.append(float(np.mean(any_wrong)))
    return errors

  def update_schedule(self, host: HostState) -> HostState:
    """Every train.schedule_every steps: lr decay on plateau, DNGPU saturation weight."""
    window = host.schedule.window
    mean_loss = window.loss / max(window.count, 1)
    lr_scale, history = decay_on_plateau(self.config.train, host.schedule.lr_scale,
                                         host.schedule.loss_history, mean_loss)
    saturation = dngpu.reestimate_saturation_weight(
        host.saturation, self.config.optimizer.learning_rate * lr_scale, mean_loss,
        window.saturation, window.count)
    return host.replace(schedule=Schedule(lr_scale, history, Window()), saturation=saturation)

  def update_curriculum(self, state: TrainState, host: HostState,
                        step: int) -> tuple[TrainState, HostState]:
    """Every curriculum.every_steps: advance the curriculum; the model's rule follows it (the
    relaxation's pull and tying)."""
    errors = self.curriculum_errors(state, host, step)
    curriculum, advanced = self.curriculum.decide(host.curriculum, errors)
    host = host.replace(curriculum=curriculum)
    if self.relaxation:
      relaxation, params = self.relaxation.on_curriculum(
          host.relaxation, state.params, advanced, self.curriculum.at_max(curriculum))
      state, host = state.replace(params=params), host.replace(relaxation=relaxation)
    return state, host

  def validation_error(self, state: TrainState) -> float:
    """Sequence error at the maximal length on held-out data (stream VALIDATION_STREAM)."""
    variables = {"params": state.params, **state.model_state}
    count = self.config.train.validation_examples
    results = eval_lib.evaluate_lengths(
        self.model, variables, self.task, [self.max_length], count,
        self.config.seed, self.error_fn, progress=False, stream=VALIDATION_STREAM, dp=self.dp)
    return results[0]["sequence_error"]

  def early_stopping(self, state: TrainState, host: HostState, step: int,
                     best_checkpoints) -> HostState:
    """Keeps the checkpoint with the lowest validation error; stops after `patience` worse."""
    best = host.best
    error = self.validation_error(state)
    if error < best.error:
      best = best._replace(step=step, error=error, stale=0)
      best_checkpoints.save(step, state, host.replace(best=best).to_json())
    else:
      best = best._replace(stale=best.stale + 1)
    best = best._replace(stopped=best.stale >= self.config.train.early_stopping_patience)
    return host.replace(best=best)

  # -- main loop ---------------------------------------------------------------------------
  def run(self, resumed: tuple[int, TrainState, dict] | None = None) -> TrainState:
    """Trains to train.num_steps from the latest checkpoint (or the start); returns the state.

    resumed: (step, state, host JSON) of that checkpoint as resume.check_restorable already
    read it, so that it is not read twice; None: read here."""
    cfg = self.config
    self.dp.check_batch_size(cfg.train.batch_size)  # before anything is written
    checkpoints = ckpt_lib.Checkpointer(self.workdir, cfg.checkpoint.max_to_keep,
                                        keep_period=cfg.checkpoint.keep_every_steps)
    host = self.init_host()
    if resumed is None and checkpoints.latest_step() is not None:
      start = checkpoints.latest_step()
      resumed = (start, *checkpoints.restore(start, self.init_state()))
    if self.max_length != cfg.train.max_length and self.dp.is_primary:
      print(f"train.max_length {cfg.train.max_length} -> {self.max_length}, the longest length "
            f"<= it that {self.task.name} takes", flush=True)
    if resumed is None:
      state = self.init_state()
    else:
      start, state, saved = resumed
      host = HostState.from_json(saved, host)  # entries added since then keep their defaults
      print(f"resuming from step {start} in {checkpoints.directory}", flush=True)
    start = int(state.step)
    writer = MetricWriter(self.workdir, resume_step=start, enabled=self.dp.is_primary)
    total = cfg.train.num_steps
    log_every = cfg.train.log_every
    curriculum_every = cfg.curriculum.every_steps
    schedule_every = cfg.train.schedule_every
    ckpt_every = cfg.checkpoint.every_steps
    bar = Progress(total, label="train ", start=start)
    pending = []  # device metrics not yet pulled to the host
    last_good = start if checkpoints.latest_step() is not None else None
    patience = cfg.train.early_stopping_patience
    best_checkpoints = (ckpt_lib.Checkpointer(self.workdir, 1, subdir=workdir_lib.BEST)
                        if patience else None)
    if host.best.stopped:
      start = total  # this run already stopped early: nothing left to train
    t0 = time.time()

    def pull():
      """Brings pending metrics to the host, into the schedule's and the log's windows; raises
      on a non-finite loss, gradient or parameter (before any checkpoint of that state)."""
      nonlocal pending, host
      values = jax.device_get([m for _, m in pending])
      steps = [s for s, _ in pending]
      pending = []
      for s, m in zip(steps, values):
        bad = metrics_lib.first_non_finite(m, ("loss", "grad_norm", "param_norm"))
        if bad:
          where = (f"last good checkpoint: step {last_good} in {checkpoints.directory}"
                   if last_good is not None else "no checkpoint was written")
          raise TrainingError(f"non-finite {bad} at step {s + 1}; stopping ({where})")
        w = host.schedule.window
        window = Window(w.loss + float(m["loss"]), w.saturation + float(m.get("saturation", 0.0)),
                        w.count + 1)
        log_window = {"sums": dict(host.log_window["sums"]), "count": host.log_window["count"]}
        metrics_lib.accumulate(log_window, m)
        host = host.replace(schedule=host.schedule._replace(window=window), log_window=log_window)

    try:
      for step in range(start, total):
        batches = self.batches(step, host)
        state, metrics = self.train_step(state, self.dp.shard(batches), self.hyper(host))
        pending.append((step, metrics))
        done = step + 1
        if done % log_every == 0 or done == total:
          pull()
          means = metrics_lib.window_means(host.log_window)
          host = host.replace(log_window=metrics_lib.new_window())
          means.update(length=self.curriculum.current_length(host.curriculum),
                       lr_scale=host.schedule.lr_scale, steps_per_second=(done - start) / (time.time() - t0),
                       num_devices=self.dp.num_devices, num_processes=self.dp.num_processes)
          writer.write(done, means)
          bar.update(done, len=means["length"], loss=means["loss"], seq_err=means["seq_err"],
                     sym_err=means["sym_err"])
        if done % schedule_every == 0:
          pull()
          host = self.update_schedule(host)
        if done % curriculum_every == 0:
          state, host = self.update_curriculum(state, host, done)
        if done % ckpt_every == 0 or done == total:
          pull()
          if patience:
            host = self.early_stopping(state, host, done, best_checkpoints)
          checkpoints.save(done, state, host.to_json())
          if self.dp.is_primary:  # one writer per run, as for the metrics
            visualize.write_curves(self.workdir)
          last_good = done
          if host.best.stopped:
            print(f"\nearly stopping at step {done}: no better validation error in {patience} "
                  f"checkpoints; best step {host.best.step} "
                  f"(sequence error {host.best.error:.4f})", flush=True)
            break
    finally:
      bar.close()
      writer.close()
      checkpoints.close()
      if best_checkpoints:
        best_checkpoints.close()
    return state


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains (resuming from the latest checkpoint in workdir, if any), then evaluates."""
  resume.check_compatible(config, workdir)
  trainer = Trainer(config, workdir)  # validates task, model and curriculum before any write
  eval_lib.check_request(trainer.task, list(config.eval.lengths), config.eval.num_examples,
                         eval_lib.hard_kinds_of(config))  # and the evaluation after training
  # The resume itself, reading only; the state read is the one training continues from.
  resumed = resume.check_restorable(workdir, trainer.init_state)
  trainer.dp.check_batch_size(config.train.batch_size)
  with workdir_lib.exclusive(workdir, enabled=trainer.dp.is_primary):  # one writer per run
    if trainer.dp.is_primary:
      workdir_lib.save_config(config, workdir)
    state = trainer.run(resumed)
    best = config.train.early_stopping_patience > 0
    # The step training ended at, named: every process evaluates the same checkpoint.
    return eval_lib.evaluate_checkpoint(workdir, None if best else int(state.step),
                                        config=config, best=best)
