"""Arithmetic in base 2, 4 or 10: addition, multiplication, increment.

Numbers are written least-significant digit first. Digit d has id d+1 (id 0 is
PAD) and the operator is the last symbol. All arithmetic uses exact Python ints:
test lengths reach L = 4001 (2000-digit operands) and beyond.

Speed note (measured, not tested; 2-core CPU, shared): sample(seed, 64, 4001)
takes about 21 ms for mul, 7 ms for qmul, 5 ms for bmul, 11 ms for add;
mul at L = 20001 about 0.36 s. The cost is the per-row int<->digit conversion.
"""

from __future__ import annotations

import numpy as np

from tasks.base import PAD, Task, check_base

# Decimal str<->int conversions above sys.get_int_max_str_digits() (4300 by
# default, never below 640) raise, so base-10 conversion goes in chunks below it.
_CHUNK = 500
_CHUNK_POWER = 10 ** _CHUNK


def digits_to_int(digits: np.ndarray, base: int) -> int:
  """Value of a digit array written least-significant digit first."""
  s = (np.asarray(digits)[::-1].astype(np.uint8) + ord('0')).tobytes().decode('ascii')
  if not s:
    return 0
  if base != 10:  # power-of-two bases convert in linear time, with no limit
    return int(s, base)
  head = len(s) % _CHUNK
  value = int(s[:head]) if head else 0
  for i in range(head, len(s), _CHUNK):
    value = value * _CHUNK_POWER + int(s[i:i + _CHUNK])
  return value


def int_to_digits(value: int, base: int, width: int) -> np.ndarray:
  """`width` digits of value, least-significant first, zero-padded."""
  if value < 0:
    raise ValueError(f'negative value {value}')
  if base == 10:
    parts = []
    while True:
      value, low = divmod(value, _CHUNK_POWER)
      parts.append(str(low).zfill(_CHUNK))
      if not value:
        break
    text = ''.join(reversed(parts))
  else:
    text = format(value, 'b')
  msb = np.frombuffer(text.encode('ascii'), np.uint8).astype(np.int32) - ord('0')
  if base == 4:  # two bits per base-4 digit
    msb = np.concatenate([np.zeros(len(msb) % 2, np.int32), msb])
    msb = 2 * msb[0::2] + msb[1::2]
  extra = len(msb) - width
  if extra > 0:
    # A sum (k+1 digits) or product (2k digits) always fits the L cells of either layout.
    if msb[:extra].any():
      raise AssertionError(f'result needs more than {width} base-{base} digits')
    msb = msb[extra:]
  out = np.zeros(width, np.int32)
  out[:len(msb)] = msb[::-1]
  return out


LAYOUTS = ('sequential', 'stacked')
_PAIR_LETTERS = 'abcdefghijklmnop'  # the digit pairs (0,0), (0,1), ... of base 2 or 4


def _pair_symbols(base: int) -> list[str]:
  """One symbol per digit pair (u, v), in the order (0,0), (0,1), ...: a letter in base 2 and 4,
  '(uv)' in base 10 (100 pairs: more than the letters)."""
  if base ** 2 <= len(_PAIR_LETTERS):
    return list(_PAIR_LETTERS[:base ** 2])
  return [f'({u}{v})' for u in range(base) for v in range(base)]


def _zero_high_digits(rng, digits: np.ndarray) -> np.ndarray:
  """'zeros' hard kind: keep 0..3 low digits per number, zero the rest."""
  d = rng.integers(0, min(digits.shape[1], 3) + 1, size=(digits.shape[0], 1))
  return np.where(np.arange(digits.shape[1]) < d, digits, 0)


class Arithmetic(Task):
  """Input a op b with k-digit operands (L = 2k+1; see layout); target: the result, L digits.

  Hard kinds: 'zeros' (operands with at most 3 significant digits, e.g.
  0...02 * 0...02, all-zero included); for addition also 'carry': digits
  s..s+c-1 of a and b sum to base^c or base^c - 1, with a chain of c >= k/2
  digits starting at a random s and random digits elsewhere; and 'propagate':
  each digit pair sums to base-1 (a carry passes straight through it) with a
  per-example probability drawn from [0.75, 0.95] instead of 1/base, so carry
  chains of every length up to k occur anywhere, without a fixed window.

  pad_result: the target holds the result's digits up to its most significant
  nonzero one (at least one digit), then PAD, as the DNGPU reference writes
  addition targets (data_utils_2.py); False: zero-padded to L digits (SPEC 2).

  layout: 'sequential' (SPEC 2, every paper's): the input is a, op, b, so digit i
  of b sits k+1 cells from digit i of a. 'stacked': cell i < k holds the digit
  pair (a_i, b_i) as one symbol, cell k the operator: the operands are aligned
  with each other and with the result's digits, as in the task-aligned layouts
  of neural cellular automata (SPEC 5). L is the fewest cells that hold the
  result: k+1 for a sum (any L >= 2; so a Neural GPU's L steps leave no slack:
  a carry must move one cell per step), 2k+1 for a product (cells k+1..2k PAD).
  One symbol per pair: 'a', 'b', ... for (0,0), (0,1), ... in base 2 and 4; '(00)', '(01)',
  ... '(99)' in base 10.
  """

  odd_only = True
  min_length = 3

  def __init__(self, name: str, base: int, op: str, pad_result: bool = False,
               layout: str = 'sequential'):
    self.base = check_base(name, base)
    self.op = op
    self.pad_result = bool(pad_result)
    if layout not in LAYOUTS:
      raise ValueError(f"{name}: unknown layout {layout!r}; valid layouts: {', '.join(LAYOUTS)}")
    self.layout = layout
    self._sum_in_k_plus_1 = layout == 'stacked' and op == '+'  # L = k + 1, any L >= 2
    if self._sum_in_k_plus_1:
      self.odd_only, self.min_length = False, 2
    self.hard_kinds = ('carry', 'propagate', 'zeros') if op == '+' else ('zeros',)
    pairs = _pair_symbols(self.base) if layout == 'stacked' else []
    super().__init__(name, [PAD, *'0123456789'[:self.base], op, *pairs])
    self._op_id = self.base + 1

  def _random_digits(self, rng, b, k):
    return rng.integers(0, self.base, size=(b, k), dtype=np.int32)

  def _operand_digits(self, length):
    return length - 1 if self._sum_in_k_plus_1 else (length - 1) // 2

  def _generate(self, rng, b, length):
    k = self._operand_digits(length)
    return self._assemble(self._random_digits(rng, b, k),
                          self._random_digits(rng, b, k), length)

  def _generate_hard(self, rng, b, length, kind):
    k = self._operand_digits(length)
    x, y = self._random_digits(rng, b, k), self._random_digits(rng, b, k)
    if kind == 'zeros':
      return self._assemble(_zero_high_digits(rng, x), _zero_high_digits(rng, y), length)
    if kind == 'propagate':
      p = rng.uniform(0.75, 0.95, size=(b, 1))
      y = np.where(rng.random((b, k)) < p, self.base - 1 - x, y)
      return self._assemble(x, y, length)
    for row in range(b):  # kind == 'carry'
      c = int(rng.integers((k + 1) // 2, k + 1))
      s = int(rng.integers(0, k - c + 1))
      self._carry_window(rng, x[row, s:s + c], y[row, s:s + c])
    return self._assemble(x, y, length)

  def _carry_window(self, rng, xw, yw):
    """Rewrites yw in place so that value(xw) + value(yw) = base^c or base^c - 1."""
    top = self.base - 1
    yw[:] = top - xw  # every digit pair sums to base-1: total base^c - 1
    if rng.integers(0, 2):
      # Total base^c: the lowest nonzero digit of xw pairs with base - it,
      # making the carry; the zeros below it pair with zeros.
      if not xw.any():
        xw[0] = 1
      t = int(np.argmax(xw != 0))
      yw[:t] = 0
      yw[t] = self.base - xw[t]
      yw[t + 1:] = top - xw[t + 1:]

  def _assemble(self, x, y, length):
    """Builds input rows ('x op y', or the stacked pairs) and exact result rows from digit
    arrays."""
    b, k = x.shape
    op_id = np.full((b, 1), self._op_id, np.int32)
    if self.layout == 'stacked':  # pair (u, v) has id op_id + 1 + u * base + v
      pairs = self._op_id + 1 + x * self.base + y
      pad = np.zeros((b, length - k - 1), np.int32)
      inputs = np.concatenate([pairs, op_id, pad], axis=1)
    else:
      inputs = np.concatenate([x + 1, op_id, y + 1], axis=1)
    targets = np.empty((b, length), np.int32)
    for row in range(b):
      u, v = digits_to_int(x[row], self.base), digits_to_int(y[row], self.base)
      result = u + v if self.op == '+' else u * v
      targets[row] = int_to_digits(result, self.base, length) + 1
    if self.pad_result:  # PAD after the most significant nonzero digit (digit d has id d+1)
      significant = np.where(targets > 1, np.arange(length), 0).max(axis=1, keepdims=True)
      targets = np.where(np.arange(length) <= significant, targets, 0).astype(np.int32)
    return inputs, targets


class Increment(Task):
  """Input: an L-digit number whose top digit is 0; target: number + 1.

  The top digit being 0 means the result always fits in L digits (no
  overflow rule needed). Hard kinds: 'carry' (the low c >= (L-1)/2 digits
  are base-1, so the +1 ripples through them), 'zeros' (at most 3
  significant digits).
  """

  min_length = 2
  hard_kinds = ('carry', 'zeros')

  def __init__(self, name: str, base: int = 10):
    self.base = check_base(name, base)
    super().__init__(name, [PAD, *'0123456789'[:self.base]])

  def _number(self, rng, b, length):
    x = rng.integers(0, self.base, size=(b, length), dtype=np.int32)
    x[:, -1] = 0
    return x

  def _generate(self, rng, b, length):
    return self._increment(self._number(rng, b, length))

  def _generate_hard(self, rng, b, length, kind):
    x = self._number(rng, b, length)
    if kind == 'zeros':
      return self._increment(_zero_high_digits(rng, x))
    n = length - 1
    c = rng.integers(length // 2, n + 1, size=(b, 1))  # c >= ceil(n/2)
    x[:, :-1] = np.where(np.arange(n) < c, self.base - 1, x[:, :-1])
    return self._increment(x)

  def _increment(self, x):
    # +1 zeroes the trailing run of base-1 digits and bumps the next digit;
    # the top digit is 0, so that digit always exists.
    t = np.argmax(x != self.base - 1, axis=1)
    y = np.where(np.arange(x.shape[1]) < t[:, None], 0, x)
    y[np.arange(x.shape[0]), t] += 1
    return x + 1, y + 1


def addition(name, base: int = 10, pad_result: bool = False, layout: str = 'sequential'):
  return Arithmetic(name, base, '+', pad_result, layout)


def multiplication(name, base: int = 10, pad_result: bool = False, layout: str = 'sequential'):
  return Arithmetic(name, base, '*', pad_result, layout)


def _fixed_base(base, op):
  def make(name, pad_result: bool = False, layout: str = 'sequential'):
    return Arithmetic(name, base, op, pad_result, layout)
  return make


TASKS = {
    'addition': addition,
    'multiplication': multiplication,
    'badd': _fixed_base(2, '+'),
    'qadd': _fixed_base(4, '+'),
    'add': _fixed_base(10, '+'),
    'bmul': _fixed_base(2, '*'),
    'qmul': _fixed_base(4, '*'),
    'mul': _fixed_base(10, '*'),
    'incr': Increment,
}
