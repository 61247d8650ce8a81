"""Training batches: which examples each step trains on (task -> batch).

A step trains one batch per curriculum draw (task index, width). The batch holds examples of
the lengths `curriculum.mix(width)` allows, padded with PAD to the width's bucket, and their
true lengths. Examples come from one of two sources:

* fresh (train.pool_size = 0): every row is a new random example, drawn from the step's seed;
* a finite pool (train.pool_size = N > 0), as the DNGPU reference trains (data_utils_2.py): up
  to N unique examples (by input) of every valid length, made once from the config seed; a bin's
  pool is the union of its lengths' pools plus train.shorter_fraction as many items taken from
  random smaller bins, and each step reads the next batch_size rows of that pool in an order
  reshuffled every pass (epoch). Short lengths hold fewer unique examples (badd at L=7 has 64),
  so a bin's lengths are mixed in proportion to how many distinct examples they have.

Every draw depends only on (config seed, step), so a resumed run reads the same batches.
"""

from typing import NamedTuple

import numpy as np

from neural_gpu import curriculum as curriculum_lib

TRAIN_STREAM = 0
POOL_STREAM = 4
# Rounds of `pool_size` fresh draws spent looking for new unique examples of a short length.
POOL_ROUNDS = 8


class Batch(NamedTuple):
  """inputs, targets: int32 (batch, width), PAD (0) beyond each example; lengths: int32
  (batch,), each example's true length (<= width)."""
  inputs: np.ndarray
  targets: np.ndarray
  lengths: np.ndarray


def data_seed(seed: int, stream: int, *path: int) -> tuple[int, ...]:
  """A numpy seed derived from the config seed through jax.random.fold_in."""
  import jax  # here so that importing this module stays cheap for tools that only read configs
  key = jax.random.fold_in(jax.random.key(seed), stream)
  for p in path:
    key = jax.random.fold_in(key, p)
  return tuple(int(x) for x in np.asarray(jax.random.key_data(key)))


def pad_to(array: np.ndarray, width: int) -> np.ndarray:
  return np.pad(array, ((0, 0), (0, width - array.shape[1])))


def unique_examples(task, seed: int, length: int, size: int) -> tuple[np.ndarray, np.ndarray]:
  """Up to `size` examples of `length` with pairwise different inputs, in draw order.

  Draws `size` examples at a time, for at most POOL_ROUNDS rounds or until a round adds none,
  so a length with fewer distinct inputs than `size` (badd L=7: 64) ends with (nearly) all.
  Returns (inputs, targets), int32 (n, length), n <= size.
  """
  inputs = np.zeros((0, length), np.int32)
  targets = np.zeros((0, length), np.int32)
  for round_ in range(POOL_ROUNDS):
    data = task.sample(data_seed(seed, POOL_STREAM, length, round_), size, length)
    inputs = np.concatenate([inputs, data.inputs])
    targets = np.concatenate([targets, data.targets])
    _, first = np.unique(inputs, axis=0, return_index=True)
    first = np.sort(first)[:size]
    grew = len(first) > len(inputs) - size
    inputs, targets = inputs[first], targets[first]
    if len(inputs) >= size or not grew:
      break
  return inputs, targets


class Pool(NamedTuple):
  """One bin's training examples, padded to its width."""
  inputs: np.ndarray
  targets: np.ndarray
  lengths: np.ndarray


def build_pools(task, curriculum, seed: int, size: int, shorter_fraction: float,
                buckets) -> dict[int, Pool]:
  """The reference's pools (data_utils_2.init_data + collectBins), keyed by bin width.

  Bins are filled in increasing width; each then gets round(shorter_fraction * its size) items,
  each from a uniformly chosen smaller bin (whose own extra items included, as in the
  reference) and padded to this bin's width.
  """
  widths = sorted({w for _, w in curriculum.draws(curriculum.init_state(), None)})
  rng = np.random.default_rng(data_seed(seed, POOL_STREAM, 0))
  pools: dict[int, Pool] = {}
  for width in widths:
    bucket = curriculum_lib.bucket_for(width, buckets)
    parts = [unique_examples(task, seed, n, size) for n in curriculum.mix(width)]
    inputs = np.concatenate([pad_to(i, bucket) for i, _ in parts])
    targets = np.concatenate([pad_to(t, bucket) for _, t in parts])
    lengths = np.concatenate([np.full(len(i), i.shape[1], np.int32) for i, _ in parts])
    smaller = [pools[w] for w in pools]
    extra = int(round(shorter_fraction * len(inputs))) if smaller else 0
    if extra:
      which = rng.integers(0, len(smaller), extra)
      rows = [(smaller[b], int(rng.integers(0, len(smaller[b].lengths)))) for b in which]
      inputs = np.concatenate([inputs, np.stack([pad_to(p.inputs[r:r + 1], bucket)[0]
                                                 for p, r in rows])])
      targets = np.concatenate([targets, np.stack([pad_to(p.targets[r:r + 1], bucket)[0]
                                                   for p, r in rows])])
      lengths = np.concatenate([lengths, np.array([p.lengths[r] for p, r in rows], np.int32)])
    pools[width] = Pool(inputs, targets, lengths)
  return pools


class InputPipeline:
  """Makes every training step's batches from the config (train.* fields) and a curriculum.

  Args:
    config: the run's config (seed, train.batch_size, train.pool_size, train.shorter_fraction,
      train.hard_fraction, train.hard_start_step, train.overfit_one_batch).
    subtasks: the tasks a draw's index picks from (one task, or a chain's members).
    curriculum: the run's curriculum (draws, mix).
    buckets: bucket widths; a batch of width w is padded to bucket_for(w).
    hard_kinds: per subtask, the hard example kinds mixed in (empty tuple: none).

  Raises:
    ValueError: train.pool_size > 0 with a curriculum other than all_bins, or with hard
      examples (the pool holds random examples only).
  """

  def __init__(self, config, subtasks, curriculum, buckets, hard_kinds):
    self.config, self.subtasks, self.curriculum = config, subtasks, curriculum
    self.buckets, self.hard_kinds = buckets, hard_kinds
    train = config.train
    self.batch_size = train.batch_size
    self.pool_size = train.pool_size
    if self.pool_size and curriculum.name != "all_bins":
      raise ValueError(f"train.pool_size={self.pool_size} needs curriculum.name=all_bins "
                       f"(got {curriculum.name}); set train.pool_size=0 for fresh examples")
    if self.pool_size and train.hard_fraction:
      raise ValueError("train.pool_size > 0 cannot mix in hard examples; set "
                       "train.hard_fraction=0 or train.pool_size=0")
    self._pools = None  # built on first use: a few seconds that validation should not pay
    self._orders = {}  # (width, epoch) -> permutation of that bin's pool

  # -- a step's batches ------------------------------------------------------------------
  def batches(self, step: int, curriculum_state) -> tuple[Batch, ...]:
    """One Batch per curriculum draw of `step`."""
    if self.config.train.overfit_one_batch:
      step = 0  # the lecture's sanity check: a model must be able to memorize one batch
    rng = np.random.default_rng(data_seed(self.config.seed, TRAIN_STREAM, step))
    if self.pool_size:
      return tuple(self._from_pool(width, step) for _, width in
                   self.curriculum.draws(curriculum_state, rng))
    hard = step >= self.config.train.hard_start_step
    return tuple(self.fresh_batch(index, tuple(rng.integers(0, 2**31, 2)), width, hard)
                 for index, width in self.curriculum.draws(curriculum_state, rng))

  def _from_pool(self, width: int, step: int) -> Batch:
    if self._pools is None:
      self._pools = build_pools(self.subtasks[0], self.curriculum, self.config.seed,
                                self.pool_size, self.config.train.shorter_fraction,
                                self.buckets)
    pool = self._pools[width]
    size = len(pool.lengths)
    positions = step * self.batch_size + np.arange(self.batch_size)
    rows = np.empty(self.batch_size, np.int64)
    for epoch in np.unique(positions // size):
      order = self._order(width, int(epoch), size)
      here = positions // size == epoch
      rows[here] = order[positions[here] % size]
    return Batch(pool.inputs[rows], pool.targets[rows], pool.lengths[rows])

  def _order(self, width: int, epoch: int, size: int) -> np.ndarray:
    if (width, epoch) not in self._orders:
      if len(self._orders) > 64:
        self._orders.clear()
      seed = data_seed(self.config.seed, POOL_STREAM, width, epoch + 1)
      self._orders[(width, epoch)] = np.random.default_rng(seed).permutation(size)
    return self._orders[(width, epoch)]

  # -- fresh examples --------------------------------------------------------------------
  def fresh_batch(self, task_index: int, seed, width: int, hard: bool = False) -> Batch:
    """A batch of new examples for a draw at `width`, padded to its bucket.

    Each row's length is drawn uniformly from curriculum.mix(width) (just `width` outside
    mixed bins). The first train.shorter_fraction of the rows get a random shorter valid length
    each (PAD after their end). With `hard`, the last train.hard_fraction of the rows come from
    the task's hard generators (split over kinds) at the largest length of the mix.
    """
    task, batch = self.subtasks[task_index], self.batch_size
    mix = self.curriculum.mix(width)
    length = max(mix)
    data = task.sample(seed, batch, length)
    inputs, targets = data.inputs, data.targets
    lens = np.full((batch,), length, np.int32)
    rng = np.random.default_rng((*seed, 1 << 16))
    if len(mix) > 1:
      lens = rng.choice(mix, size=batch).astype(np.int32)
    num_short = int(round(self.config.train.shorter_fraction * batch))
    shorter = task.valid_lengths(min(mix) - 1) if num_short else []
    if shorter:
      lens[:num_short] = rng.choice(shorter, size=num_short)
    for row in np.flatnonzero(lens < length):  # one sample call per row: the seeds stay those
      extra = task.sample((*seed, (1 << 16) + row + 1), 1, int(lens[row]))  # of earlier runs
      inputs[row], targets[row] = pad_to(extra.inputs, length)[0], pad_to(extra.targets, length)[0]
    num_hard = int(round(self.config.train.hard_fraction * batch)) if hard else 0
    if num_hard:
      kinds = self.hard_kinds[task_index]
      rows = np.array_split(np.arange(batch - num_hard, batch), len(kinds))
      for i, (kind, part) in enumerate(zip(kinds, rows)):
        if len(part):
          extra = task.sample_hard((*seed, i + 1), len(part), length, kind)
          inputs[part], targets[part], lens[part] = extra.inputs, extra.targets, length
    bucket = curriculum_lib.bucket_for(length, self.buckets)
    return Batch(pad_to(inputs, bucket), pad_to(targets, bucket), lens)
