"""Model registry: every model is picked by name from the config.

A model is a flax linen Module called as `model.apply(variables, inputs, lengths, train=...)`
with inputs int32 (batch, L) and lengths int32 (batch,) (the true length of each example; the
rest of the row is bucket padding). It returns a `ModelOutput` with logits (batch, L, vocab).
"""

import dataclasses

from neural_gpu.models.common import ModelOutput
from neural_gpu.models.dngpu import DNGPU
from neural_gpu.models.mlp import MLP, HighwayMLP
from neural_gpu.models.ngpu import NeuralGPU
from neural_gpu.models.recurrent import GRU, LSTM, ElmanRNN, RecurrentHighway

_REGISTRY = {
    "neural_gpu": NeuralGPU,
    "dngpu": DNGPU,
    # Baselines: fixed-size feed-forward nets and read-then-emit recurrent nets.
    "mlp": MLP,
    "highway_mlp": HighwayMLP,
    "rnn": ElmanRNN,
    "gru": GRU,
    "lstm": LSTM,
    "highway": RecurrentHighway,
}


def names() -> list[str]:
  return sorted(_REGISTRY)


def register(name: str, cls) -> None:
  _REGISTRY[name] = cls


def parameters(name: str) -> set[str]:
  """Model `name`'s parameter names (its dataclass fields but vocab_size); empty if unknown."""
  if name not in _REGISTRY:
    return set()
  return {f.name for f in dataclasses.fields(_REGISTRY[name])} - {"parent", "name", "vocab_size"}


def defaults(name: str) -> dict:
  """Model `name`'s parameters and their defaults (the dataclass fields); {} if unknown."""
  if name not in _REGISTRY:
    return {}
  return {f.name: f.default for f in dataclasses.fields(_REGISTRY[name])
          if f.name in parameters(name) and f.default is not dataclasses.MISSING}


def get(name: str, vocab_size: int, **params):
  """Builds model `name`; unknown names and parameters raise a ValueError listing valid ones."""
  if name not in _REGISTRY:
    raise ValueError(f"unknown model {name!r}; valid models: {', '.join(names())}")
  cls = _REGISTRY[name]
  fields = parameters(name)
  unknown = sorted(set(params) - fields)
  if unknown:
    raise ValueError(f"model {name!r} has no parameter(s) {', '.join(unknown)}; "
                     f"valid: {', '.join(sorted(fields))}")
  for key, value in params.items():
    if (key.endswith("dropout") or key == "zoneout") and not 0.0 <= value < 1.0:
      raise ValueError(f"model.{key} is a rate and must be in [0, 1), got {value}")
  return cls(vocab_size=vocab_size, **params)


__all__ = ["ModelOutput", "defaults", "get", "names", "parameters", "register"]
