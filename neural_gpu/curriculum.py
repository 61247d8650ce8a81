"""Curricula: which lengths each training step uses, and when to move on.

A curriculum is picked by name from `config.curriculum`. Its state is a small JSON-able dict kept
by the trainer and saved in every checkpoint, so a resumed run continues the same schedule.
All sampling draws from the numpy Generator the trainer derives from fold_in(key, step).
"""

import numpy as np

# Bucket widths of the reference code; lengths are padded up to the next one so that each
# bucket compiles once.
DEFAULT_BUCKETS = (8, 12, 16, 20, 24, 28, 32, 36, 40, 48, 64, 96, 128, 192, 256)


def make_buckets(max_length: int, extra=()) -> tuple[int, ...]:
  """Bucket widths up to max_length, which is always a bucket itself (no padding at the top)."""
  return tuple(sorted({b for b in DEFAULT_BUCKETS if b < max_length} | {max_length} | set(extra)))


def bucket_for(length: int, buckets) -> int:
  """Smallest bucket >= length; beyond the largest bucket a length is its own bucket."""
  for b in buckets:
    if b >= length:
      return b
  return length


class Curriculum:
  """Base class. `lengths` gives one length per batch of the step."""
  name = ""

  def __init__(self, config, task, max_length: int):
    self.config = config
    self.task = task
    self.max_length = task.nearest_valid_length(max_length)

  def init_state(self) -> dict:
    return {"length": self.max_length}

  def lengths(self, state: dict, rng: np.random.Generator) -> list[int]:
    return [self.max_length]

  def current_length(self, state: dict) -> int:
    return state["length"]

  def at_max(self, state: dict) -> bool:
    return state["length"] >= self.max_length

  def decide(self, state: dict, error: float) -> tuple[dict, bool]:
    """Given the sequence error at the current length, returns (new state, advanced?)."""
    return state, False

  def extra_buckets(self) -> list[int]:
    """Lengths that should be buckets of their own (trained every step, so never padded)."""
    return [self.max_length]


class Fixed(Curriculum):
  """No curriculum: every step trains at the maximal length."""
  name = "fixed"


class NGPU(Curriculum):
  """The Neural GPU rule: grow the current length while the error there is below a threshold.

  Each batch draws l uniformly in [min_length, cur]; with p=0.6 l becomes the max with a second
  such draw, and with p=0.25 the max with a draw in [min_length, max_length].
  """
  name = "ngpu"

  def init_state(self):
    start = min(self.config.get("start_length", 6), self.max_length)
    return {"length": self._snap(start)}

  def _snap(self, length: int) -> int:
    min_len = self.task.valid_lengths(self.max_length)[0]
    return self.task.nearest_valid_length(max(length, min_len))

  def lengths(self, state, rng):
    low = self.config.get("min_length", 3)
    cur = state["length"]
    draw = lambda hi: int(rng.integers(min(low, hi), hi + 1))
    length = draw(cur)
    if rng.random() < 0.6:
      length = max(length, draw(cur))
    if rng.random() < 0.25:
      length = max(length, draw(self.max_length))
    return [self._snap(length)]

  def decide(self, state, error):
    cur = state["length"]
    if error >= self.config.get("threshold", 0.15) or cur >= self.max_length:
      return state, False
    valid = [l for l in self.task.valid_lengths(self.max_length) if l > cur]
    return {"length": valid[0]}, True


class AllBins(Curriculum):
  """The DNGPU scheme: every step trains every length bin (no curriculum)."""
  name = "all_bins"

  def _bins(self):
    bins = self.config.get("bins", (8, 12, 16, 20, 25, 28, 31, 36, 41))
    snapped = {self.task.nearest_valid_length(min(b, self.max_length))
               for b in bins if b >= self.task.valid_lengths(self.max_length)[0]}
    return sorted(snapped | {self.max_length})

  def lengths(self, state, rng):
    return self._bins()

  def extra_buckets(self):
    return self._bins()


_REGISTRY = {c.name: c for c in (Fixed, NGPU, AllBins)}


def names() -> list[str]:
  return sorted(_REGISTRY)


def get(config, task, max_length: int) -> Curriculum:
  if config.name not in _REGISTRY:
    raise ValueError(f"unknown curriculum {config.name!r}; valid curricula: {', '.join(names())}")
  return _REGISTRY[config.name](config, task, max_length)
