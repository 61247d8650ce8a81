"""Task base class, the Batch type, and validation shared by every task."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

PAD = '_'
PAD_ID = 0
# Symbols available to alphabet tasks, in id order: digits, then a-z, then A-Z.
ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz' + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
MAX_ALPHABET = len(ALPHABET)
BASES = (2, 4, 10)


class Batch(NamedTuple):
  """Inputs and targets, both int32 of shape (batch_size, length)."""
  inputs: np.ndarray
  targets: np.ndarray


def _is_int(x) -> bool:
  # bool is an int subclass, but True as a length or a size is always a bug.
  return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def check_int(name: str, value, *, low: int, high: int | None = None,
              param: str | None = None) -> int:
  """Returns value as int, or raises ValueError naming the parameter."""
  what = f'{param} ' if param else ''
  allowed = f'an integer >= {low}' if high is None else f'an integer in [{low}, {high}]'
  if not _is_int(value) or value < low or (high is not None and value > high):
    raise ValueError(f'{name}: {what}must be {allowed}, got {value!r}')
  return int(value)


def check_base(name: str, base) -> int:
  if not _is_int(base) or int(base) not in BASES:
    raise ValueError(f'{name}: base must be one of {list(BASES)}, got {base!r}')
  return int(base)


def check_seed(seed):
  """default_rng accepts more than this; we keep seeds simple and loggable."""
  if _is_int(seed) and seed >= 0:
    return int(seed)
  if isinstance(seed, (tuple, list)) and seed and all(_is_int(s) and s >= 0 for s in seed):
    return tuple(int(s) for s in seed)
  raise ValueError(f'seed must be a non-negative int or a non-empty tuple of '
                   f'non-negative ints, got {seed!r}')


class Task:
  """A generator of (input, target) pairs of equal length L.

  Subclasses set `symbols` (symbols[0] is PAD), the length rule (`min_length`,
  `odd_only`, or `fixed_length`) and implement `_generate`.
  """

  name: str
  symbols: list[str]
  min_length: int = 1
  odd_only: bool = False
  fixed_length: int | None = None
  # Kinds accepted by sample_hard; empty for tasks without hard test sets.
  hard_kinds: tuple[str, ...] = ()

  def __init__(self, name: str, symbols: list[str]):
    assert symbols[0] == PAD and len(set(symbols)) == len(symbols), symbols
    self.name = name
    self.symbols = list(symbols)
    self._ids = {s: i for i, s in enumerate(self.symbols)}

  def __repr__(self) -> str:
    return f'<Task {self.name} vocab={self.symbols}>'

  @property
  def vocab_size(self) -> int:
    return len(self.symbols)

  # ---- lengths -------------------------------------------------------------

  def length_rule(self) -> str:
    """Human-readable description of the valid lengths, used in errors."""
    if self.fixed_length is not None:
      return f'length {self.fixed_length} exactly'
    return f"{'odd ' if self.odd_only else ''}length >= {self.min_length}"

  def is_valid_length(self, length) -> bool:
    if not _is_int(length):
      return False
    if self.fixed_length is not None:
      return length == self.fixed_length
    return length >= self.min_length and (not self.odd_only or length % 2 == 1)

  def valid_lengths(self, max_length: int) -> list[int]:
    return [n for n in range(1, int(max_length) + 1) if self.is_valid_length(n)]

  def nearest_valid_length(self, length: int) -> int:
    """Largest valid length <= length (the trainer snaps curriculum lengths)."""
    if _is_int(length):
      for n in range(int(length), 0, -1):
        if self.is_valid_length(n):
          return n
        if self.fixed_length is None and n < self.min_length:
          break
    raise ValueError(f'{self.name}: no valid length <= {length!r}; '
                     f'{self.name} needs {self.length_rule()}')

  def _check_length(self, length) -> int:
    if not self.is_valid_length(length):
      raise ValueError(f'{self.name} needs {self.length_rule()}, got {length!r}')
    return int(length)

  # ---- sampling ------------------------------------------------------------

  def sample(self, seed, batch_size: int, length: int) -> Batch:
    """A batch that depends only on (seed, batch_size, length)."""
    rng, batch_size, length = self._prepare(seed, batch_size, length)
    return self._finish(self._generate(rng, batch_size, length), batch_size, length)

  def sample_hard(self, seed, batch_size: int, length: int, kind: str) -> Batch:
    """A hard test batch (SPEC 2, EXT); see `hard_kinds` for what exists."""
    if kind not in self.hard_kinds:
      valid = ', '.join(self.hard_kinds) if self.hard_kinds else 'none'
      raise ValueError(f'{self.name}: unknown hard kind {kind!r}; valid kinds: {valid}')
    rng, batch_size, length = self._prepare(seed, batch_size, length)
    return self._finish(self._generate_hard(rng, batch_size, length, kind),
                        batch_size, length)

  def _prepare(self, seed, batch_size, length):
    seed = check_seed(seed)
    batch_size = check_int(self.name, batch_size, low=1, param='batch_size')
    length = self._check_length(length)
    return np.random.default_rng(seed), batch_size, length

  def _finish(self, pair, batch_size: int, length: int) -> Batch:
    inputs, targets = (np.ascontiguousarray(a, dtype=np.int32) for a in pair)
    # Guards the rule "target length == input length == L" for every task.
    assert inputs.shape == targets.shape == (batch_size, length), (
        self.name, inputs.shape, targets.shape, (batch_size, length))
    return Batch(inputs, targets)

  def _generate(self, rng: np.random.Generator, batch_size: int, length: int):
    raise NotImplementedError

  def _generate_hard(self, rng, batch_size, length, kind):
    raise NotImplementedError

  # ---- text <-> ids --------------------------------------------------------

  def encode(self, text: str) -> np.ndarray:
    """The ids of `text`, read as a sequence of symbols (the longest symbol that matches first,
    so a stacked decimal pair '(37)' is one symbol); ValueError on text no symbol matches."""
    ids, i = [], 0
    longest = max(len(s) for s in self.symbols)
    while i < len(text):
      n = next((n for n in range(min(longest, len(text) - i), 0, -1)
                if text[i:i + n] in self._ids), 0)
      if not n:
        raise ValueError(f'{self.name}: unknown symbol {text[i]!r} in {text!r}; '
                         f"symbols are {''.join(self.symbols)!r}")
      ids.append(self._ids[text[i:i + n]])
      i += n
    return np.array(ids, dtype=np.int32)

  def decode(self, ids) -> str:
    ids = np.asarray(ids)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
      raise ValueError(f'{self.name}: decode takes a 1-D sequence of int ids, '
                       f'got shape {ids.shape} dtype {ids.dtype}')
    bad = (ids < 0) | (ids >= self.vocab_size)
    if bad.any():
      raise ValueError(f'{self.name}: id {int(ids[bad][0])} out of range '
                       f'[0, {self.vocab_size - 1}]')
    return ''.join(self.symbols[i] for i in ids.tolist())
