"""Algorithmic tasks for Neural GPUs (SPEC section 2). Pure NumPy.

    task = tasks.get('badd')             # or tasks.get('copy', alphabet_size=4)
    batch = task.sample(seed, batch_size, length)   # int32 (batch_size, length) x2
    task.decode(batch.inputs[0]), task.decode(batch.targets[0])

Every task maps an input of length L to a target of length L. Id 0 is PAD ('_').
Numbers are least-significant digit first; arithmetic targets are zero-padded
with the digit '0' (not PAD) to length L.

| task | params | valid L | input | target |
|---|---|---|---|---|
| copy | alphabet_size=2 | >= 1 | L symbols | the same |
| reverse | alphabet_size=2 | >= 1 | L symbols | reversed |
| dup | alphabet_size=2 | >= 1 | ceil(L/2) symbols, then PAD | the symbols twice, cut to L |
| sort | alphabet_size=2 | >= 1 | L symbols | sorted by id |
| kvsort | alphabet_size=2 | >= 2 | floor(L/2) pairs k v (+PAD if L odd) | pairs stably sorted by key (+PAD) |
| rev2 | alphabet_size=2 | >= 2 | as kvsort | pair order reversed (+PAD) |
| search | alphabet_size=2 | >= 4 | (L-2)//2 pairs, '?', query key (+PAD) | position 0: value of first pair with that key; rest PAD |
| repeat_even | alphabet_size=2 | >= 1 | L symbols | symbols at positions 0,2,4.. each twice, cut to L |
| incr | base=10 | >= 2 | L digits, top digit 0 | number + 1 |
| badd/qadd/add | - | odd >= 3 | a '+' b, k digits each, L = 2k+1 | a + b, L digits |
| bmul/qmul/mul | - | odd >= 3 | a '*' b | a * b, L digits |
| addition/multiplication | base=10 | odd >= 3 | as add/mul, base 2, 4 or 10 | as add/mul |
| badd/qadd/add/bmul/qmul/mul | layout='stacked' | sum: >= 2 (L = k+1); product: odd >= 3 | cell i < k: the pair (a_i, b_i), then op (product: then PAD) | as add/mul |
| xor | n_bits=2 | n_bits only | n_bits bits | position 0: XOR of the bits; rest PAD |
| parity | n_bits=8 | n_bits only | n_bits bits | as xor |

Arithmetic also takes pad_result=True (the DNGPU reference's addition targets: PAD after the
result's top nonzero digit) and layout='stacked' (the operands aligned digit by digit, one
symbol per pair: 'a'..'d' in base 2, '(00)'..'(99)' in base 10; 'sequential', a op b, is
the papers' layout).

Symbols: alphabet tasks use ['_', '0'..'9', 'a'..'z', 'A'..'Z'][:n+1]
(alphabet_size n in [2, 62]), search adds '?'; arithmetic in base b uses
['_', '0'..'b-1', op] (stacked: then one symbol per digit pair, 'a'..'d' in base 2,
'a'..'p' in base 4, '(00)'..'(99)' in base 10); incr ['_', '0'..'b-1']; xor/parity ['_', '0', '1'].

Hard test sets (SPEC, EXT): `task.sample_hard(seed, batch_size, length, kind)`
with kind in `task.hard_kinds`: 'carry' (addition, incr: long carry chains),
'propagate' (addition: most digit pairs pass a carry through) and 'zeros'
(addition, multiplication, incr: operands with at most 3 significant digits,
such as 0...02 * 0...02).

`seed` is an int or a tuple of non-negative ints for np.random.default_rng;
batches depend only on (seed, batch_size, length). Use `valid_lengths`,
`is_valid_length` and `nearest_valid_length` to pick lengths.
"""

from __future__ import annotations

import inspect

from tasks import arithmetic, fixed, symbolic
from tasks.base import PAD, Batch, Task

__all__ = ['Batch', 'PAD', 'Task', 'get', 'names']

_REGISTRY = {**symbolic.TASKS, **arithmetic.TASKS, **fixed.TASKS}


def names() -> list[str]:
  return sorted(_REGISTRY)


def _accepted_params(factory) -> list[str]:
  # Every factory takes the task name first; the rest are its parameters.
  return list(inspect.signature(factory).parameters)[1:]


class UnknownParameterError(ValueError):
  """A task was given a parameter it does not take (the message lists the accepted ones)."""


def get(name: str, **params) -> Task:
  """The task `name` built with `params`; ValueError if either is unknown (for a parameter,
  the subclass UnknownParameterError).

  A comma-separated name ("bmul,qmul,mul") gives a TaskChain over those tasks, each built with
  the params it accepts.
  """
  if "," in name:
    from tasks.chain import TaskChain
    members = [n.strip() for n in name.split(",")]
    unused = set(params) - {p for n in members if n in _REGISTRY
                            for p in _accepted_params(_REGISTRY[n])}
    if unused:
      raise UnknownParameterError(
          f"{name}: no task in the chain takes parameter(s) {', '.join(sorted(unused))}")
    return TaskChain([get(n, **{k: v for k, v in params.items()
                                if n in _REGISTRY and k in _accepted_params(_REGISTRY[n])})
                      for n in members])
  if name not in _REGISTRY:
    raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(names())}")
  factory = _REGISTRY[name]
  accepted = _accepted_params(factory)
  unknown = sorted(set(params) - set(accepted))
  if unknown:
    raise UnknownParameterError(f"{name}: unknown parameter(s) {', '.join(unknown)}; "
                                f"accepted: {', '.join(accepted) or 'none'}")
  return factory(name, **params)
