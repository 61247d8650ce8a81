"""Several tasks sharing one vocabulary, for progressive multi-task training (EXT).

`tasks.get("bmul,qmul,mul")` gives a TaskChain: the union of the tasks' symbols is the
vocabulary, each member samples in that vocabulary, and the chain itself behaves as its LAST
task (the one the chain works towards), so evaluation tests that task.
"""

from __future__ import annotations

import numpy as np

from tasks.base import Batch, Task


class RemappedTask(Task):
  """A task whose symbol ids are rewritten into a larger shared vocabulary."""

  def __init__(self, task: Task, symbols: list[str]):
    super().__init__(task.name, symbols)
    self.inner = task
    self.min_length, self.odd_only = task.min_length, task.odd_only
    self.fixed_length, self.hard_kinds = task.fixed_length, task.hard_kinds
    self._map = np.array([symbols.index(s) for s in task.symbols], np.int32)

  def _remap(self, batch: Batch) -> Batch:
    return Batch(self._map[batch.inputs], self._map[batch.targets])

  def sample(self, seed, batch_size, length):
    return self._remap(self.inner.sample(seed, batch_size, length))

  def sample_hard(self, seed, batch_size, length, kind):
    return self._remap(self.inner.sample_hard(seed, batch_size, length, kind))


class TaskChain(RemappedTask):
  """Members in training order; as a Task it is the last member."""

  def __init__(self, members: list[Task]):
    symbols = []
    for task in members:
      symbols += [s for s in task.symbols if s not in symbols]
    super().__init__(members[-1], symbols)
    self.name = ",".join(t.name for t in members)
    self.subtasks = [RemappedTask(t, symbols) for t in members]
