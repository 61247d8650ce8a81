"""Symbol tasks over a configurable alphabet: copy, reverse, dup, sort, kvsort,
rev2, search, repeat_even.

Symbol ids: 0 is PAD, 1..n are the alphabet (digits, then a-z, then A-Z), so
'sorted' means ascending id. search adds the query marker '?' as id n+1.
"""

from __future__ import annotations

import numpy as np

from tasks.base import ALPHABET, MAX_ALPHABET, PAD, Task, check_int

QUERY = '?'


class AlphabetTask(Task):
  """A task whose inputs are drawn uniformly from n symbols (ids 1..n)."""

  extra_symbols: tuple[str, ...] = ()

  def __init__(self, name: str, alphabet_size: int = 2):
    n = check_int(name, alphabet_size, low=2, high=MAX_ALPHABET, param='alphabet_size')
    self.alphabet_size = n
    super().__init__(name, [PAD, *ALPHABET[:n], *self.extra_symbols])

  def _symbols(self, rng, *shape) -> np.ndarray:
    return rng.integers(1, self.alphabet_size + 1, size=shape, dtype=np.int32)


class Copy(AlphabetTask):
  def _generate(self, rng, b, length):
    x = self._symbols(rng, b, length)
    return x, x.copy()


class Reverse(AlphabetTask):
  def _generate(self, rng, b, length):
    x = self._symbols(rng, b, length)
    return x, x[:, ::-1]


class Sort(AlphabetTask):
  def _generate(self, rng, b, length):
    x = self._symbols(rng, b, length)
    return x, np.sort(x, axis=1)


class Dup(AlphabetTask):
  """Input: ceil(L/2) symbols then PAD. Target: the symbols twice, cut to L."""

  def _generate(self, rng, b, length):
    k = (length + 1) // 2
    s = self._symbols(rng, b, k)
    inputs = np.concatenate([s, np.zeros((b, length - k), np.int32)], axis=1)
    return inputs, np.concatenate([s, s], axis=1)[:, :length]


class RepeatEven(AlphabetTask):
  """Target: symbols at positions 0, 2, 4, ..., each written twice, cut to L.

  ceil(L/2) symbols repeated twice is always >= L, so nothing needs padding.
  """

  def _generate(self, rng, b, length):
    x = self._symbols(rng, b, length)
    return x, np.repeat(x[:, ::2], 2, axis=1)[:, :length]


def _pairs_to_rows(keys, values, length):
  """Interleaves (B, p) keys and values to k0 v0 k1 v1 ..., PAD-filled to L."""
  b, p = keys.shape
  out = np.zeros((b, length), np.int32)
  out[:, 0:2 * p:2] = keys
  out[:, 1:2 * p:2] = values
  return out


class PairTask(AlphabetTask):
  """floor(L/2) (key, value) pairs; an odd L ends with one PAD in input and target.

  Padding instead of rejecting odd L keeps every length >= 2 valid, so these
  tasks share test lengths (41, 401, 4001) with the arithmetic tasks.
  """

  min_length = 2

  def _generate(self, rng, b, length):
    p = length // 2
    keys, values = self._symbols(rng, b, p), self._symbols(rng, b, p)
    tk, tv = self._transform(keys, values)
    return _pairs_to_rows(keys, values, length), _pairs_to_rows(tk, tv, length)

  def _transform(self, keys, values):
    raise NotImplementedError


class KVSort(PairTask):
  """Pairs stably sorted by key (equal keys keep input order)."""

  def _transform(self, keys, values):
    order = np.argsort(keys, axis=1, kind='stable')
    return (np.take_along_axis(keys, order, axis=1),
            np.take_along_axis(values, order, axis=1))


class Rev2(PairTask):
  """Pair order reversed; each (key, value) pair stays intact."""

  def _transform(self, keys, values):
    return keys[:, ::-1], values[:, ::-1]


class Search(AlphabetTask):
  """Input: p = (L-2)//2 pairs k v, then '?', then a query key [, PAD if L odd].

  Target: position 0 holds the value of the first pair whose key equals the
  query; every other position is PAD. The query is copied from a random pair,
  so a match always exists. The input is exactly L long (the reference's
  search data had the wrong length).
  """

  min_length = 4
  extra_symbols = (QUERY,)

  def _generate(self, rng, b, length):
    p = (length - 2) // 2
    keys, values = self._symbols(rng, b, p), self._symbols(rng, b, p)
    rows = np.arange(b)
    query = keys[rows, rng.integers(0, p, size=b)]
    first = np.argmax(keys == query[:, None], axis=1)  # first True per row
    inputs = _pairs_to_rows(keys, values, length)
    inputs[:, 2 * p] = self.alphabet_size + 1  # id of '?'
    inputs[:, 2 * p + 1] = query
    targets = np.zeros((b, length), np.int32)
    targets[:, 0] = values[rows, first]
    return inputs, targets


TASKS = {
    'copy': Copy,
    'reverse': Reverse,
    'dup': Dup,
    'sort': Sort,
    'kvsort': KVSort,
    'rev2': Rev2,
    'search': Search,
    'repeat_even': RepeatEven,
}
