"""Fixed-size sanity tasks for MLP baselines: xor and parity.

Input: n_bits bits ('0'/'1'). Target: same length n_bits, with the answer bit
at position 0 and PAD elsewhere, so input and target lengths still match.
The only valid length is n_bits (`fixed_length`).
"""

from __future__ import annotations

import numpy as np

from tasks.base import PAD, Task, check_int


class Parity(Task):
  """XOR of all n_bits input bits (xor is parity with 2 bits by default)."""

  def __init__(self, name: str, n_bits: int):
    self.n_bits = check_int(name, n_bits, low=2, param='n_bits')
    self.fixed_length = self.n_bits
    super().__init__(name, [PAD, '0', '1'])

  def _generate(self, rng, b, length):
    bits = rng.integers(0, 2, size=(b, length), dtype=np.int32)
    targets = np.zeros((b, length), np.int32)
    targets[:, 0] = bits.sum(axis=1) % 2 + 1
    return bits + 1, targets


def xor(name, n_bits: int = 2):
  return Parity(name, n_bits)


def parity(name, n_bits: int = 8):
  return Parity(name, n_bits)


TASKS = {'xor': xor, 'parity': parity}
