"""The default experiment: binary addition with the operands stacked, on a 2-core CPU.

`experiments/badd_stacked.py` (its docstring has the recipe): the improved Neural GPU (m=24)
learns to add binary numbers of up to 20 bits whose digits are given side by side, one cell
per digit pair, and is tested on 200- and 2000-bit numbers (10x and 100x), random and hard
(long carry chains, almost-zero operands). This is not the papers' 'a + b' layout, on which
addition does not yet generalize on every seed here (RESULTS.md).

No arg (the file takes no `:arg`; change fields with --config.a.b=v).

  python launch.py                       # this file, into runs/default
  python launch.py --workdir=runs/default_s1 --config.seed=1   # another seed
"""

from experiments import badd_stacked


def get_config(arg=None):
  return badd_stacked.get_config(arg)
