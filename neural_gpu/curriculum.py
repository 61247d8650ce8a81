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
  """Base class. A step trains one batch per `draws` entry: (task index, length).

  The task index picks among `task.subtasks` for a TaskChain, and is 0 otherwise.
  """
  name = ""

  def __init__(self, config, task, max_length: int):
    self.config = config
    self.task = task
    self.max_length = task.nearest_valid_length(max_length)

  def init_state(self) -> dict:
    return {"length": self.max_length}

  def draws(self, state: dict, rng: np.random.Generator) -> list[tuple[int, int]]:
    return [(0, self.max_length)]

  def current_length(self, state: dict) -> int:
    return state["length"]

  def at_max(self, state: dict) -> bool:
    return state["length"] >= self.max_length

  def probes(self, state: dict) -> list[tuple[int, int]]:
    """(task, length) pairs whose sequence error `decide` needs."""
    return [(0, state["length"])]

  def decide(self, state: dict, errors: list[float]) -> tuple[dict, bool]:
    """Given the errors at `probes(state)`, returns (new state, advanced?)."""
    return state, False

  def extra_buckets(self) -> list[int]:
    """Lengths that should be buckets of their own (trained every step, so never padded)."""
    return [self.max_length]

  def mix(self, width: int) -> list[int]:
    """The example lengths a batch drawn at `width` holds (all equal to it but for bins)."""
    return [width]


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
    return {"length": self._start()}

  def _start(self) -> int:
    return self._snap(min(self.config.start_length, self.max_length))

  def _snap(self, length: int, task=None) -> int:
    """The largest length <= `length` valid for `task` (default: the curriculum's task), never
    below its shortest valid length."""
    task = task or self.task
    return task.nearest_valid_length(max(length, task.valid_lengths(self.max_length)[0]))

  def _draw_length(self, cur: int, rng, task=None) -> int:
    low = self.config.min_length
    draw = lambda hi: int(rng.integers(min(low, hi), hi + 1))
    length = draw(cur)
    if rng.random() < 0.6:
      length = max(length, draw(cur))
    if rng.random() < 0.25:
      length = max(length, draw(self.max_length))
    return self._snap(length, task)

  def _next(self, cur: int, error: float, task=None) -> int:
    if error >= self.config.threshold or cur >= self.max_length:
      return cur
    return [l for l in (task or self.task).valid_lengths(self.max_length) if l > cur][0]

  def draws(self, state, rng):
    return [(0, self._draw_length(state["length"], rng))]

  def decide(self, state, errors):
    new = self._next(state["length"], errors[0])
    return {"length": new}, new != state["length"]


class Chain(NGPU):
  """EXT's progressive multi-task curriculum over a TaskChain ("bmul,qmul,mul").

  Each task has its own NGPU length schedule. 80% of steps train the first unsolved task and 20%
  a random unsolved one; a task is solved once it reaches the maximal length with an error below
  the threshold. Once all are solved, the last task trains alone.
  """
  name = "chain"

  def __init__(self, config, task, max_length):
    if not hasattr(task, "subtasks"):
      raise ValueError("the chain curriculum needs a task chain such as task.name='bmul,qmul,mul'")
    super().__init__(config, task, max_length)
    # Every member trains up to one maximal length, valid for all of them; each member's draws
    # and steps are snapped with that member's own length rule.
    common = [n for n in task.valid_lengths(max_length)
              if all(t.is_valid_length(n) for t in task.subtasks)]
    if not common:
      raise ValueError(f"no length <= train.max_length={max_length} is valid for every task of "
                       f"the chain {task.name}; pick tasks with a common valid length")
    self.max_length = common[-1]

  def init_state(self):
    return {"lengths": [self._snap(min(self.config.start_length, self.max_length), t)
                        for t in self.task.subtasks],
            "solved": [False] * len(self.task.subtasks)}

  def _unsolved(self, state) -> list[int]:
    return [i for i, done in enumerate(state["solved"]) if not done]

  def current_length(self, state):
    unsolved = self._unsolved(state)
    return state["lengths"][unsolved[0] if unsolved else -1]

  def at_max(self, state):
    return all(state["solved"])

  def draws(self, state, rng):
    unsolved = self._unsolved(state) or [len(state["solved"]) - 1]
    index = unsolved[0] if rng.random() < 0.8 else unsolved[int(rng.integers(len(unsolved)))]
    return [(index, self._draw_length(state["lengths"][index], rng, self.task.subtasks[index]))]

  def probes(self, state):
    return [(i, state["lengths"][i]) for i in self._unsolved(state)]

  def decide(self, state, errors):
    state = {"lengths": list(state["lengths"]), "solved": list(state["solved"])}
    advanced = False
    for (i, cur), error in zip(self.probes(state), errors):
      if cur >= self.max_length and error < self.config.threshold:
        state["solved"][i] = advanced = True
      new = self._next(cur, error, self.task.subtasks[i])
      advanced |= new != cur
      state["lengths"][i] = new
    return state, advanced


class AllBins(Curriculum):
  """The DNGPU scheme: every step trains every length bin (no curriculum).

  With curriculum.mixed_bins (the reference, DNGPU_trainer.py + data_utils_2.py), a bin of
  width w holds every valid length above the previous bin's width and up to w, padded to w;
  without it, each bin is snapped down to one valid length and holds that length only.
  """
  name = "all_bins"

  def _bins(self):
    bins = self.config.bins
    first = self.task.valid_lengths(self.max_length)[0]
    if self.config.mixed_bins:
      return sorted({b for b in bins if first <= b < self.max_length} | {self.max_length})
    snapped = {self.task.nearest_valid_length(min(b, self.max_length))
               for b in bins if b >= first}
    return sorted(snapped | {self.max_length})

  def draws(self, state, rng):
    return [(0, length) for length in self._bins()]

  def extra_buckets(self):
    return self._bins()

  def mix(self, width):
    if not self.config.mixed_bins:
      return [width]
    bins = self._bins()
    below = max([b for b in bins if b < width], default=0)
    return [n for n in self.task.valid_lengths(width) if n > below]


_REGISTRY = {c.name: c for c in (Fixed, NGPU, Chain, AllBins)}


def names() -> list[str]:
  return sorted(_REGISTRY)


def get(config, task, max_length: int) -> Curriculum:
  if config.name not in _REGISTRY:
    raise ValueError(f"unknown curriculum {config.name!r}; valid curricula: {', '.join(names())}")
  if hasattr(task, "subtasks") and config.name != Chain.name:  # it would train one member only
    raise ValueError(f"the task chain {task.name} needs curriculum.name=chain, got "
                     f"{config.name!r}; set --config.curriculum.name=chain or train one task")
  return _REGISTRY[config.name](config, task, max_length)
