"""The default experiment: the improved Neural GPU learns to reverse a sequence on a 2-core CPU.

Trains on binary sequences of length up to 41 (every length bin every step, as in the DNGPU
paper) with m=24 maps and dropout 0.1 on the candidate, then tests at 41, 401 (10x) and 4001
(100x). The dropout is what makes the learned rule hold far past the training range: without
it the same runs learned the training range as fast but got 77-96% of the 10x sequences wrong
(README.md). Reverse, not binary addition, is the default because it is the task that
generalized on every seed we ran (six of six, 0 errors at 41, 401 and 4001) within the CPU
budget: about 7 minutes on an idle 2-core CPU, evaluation included. experiments/badd_cpu.py
is the addition recipe; it generalized on one seed of four.

No arg (the file takes no `:arg`; change fields with --config.a.b=v).

  python launch.py                       # this file, into runs/default
  python launch.py --workdir=runs/reverse_seed1 --config.seed=1   # another seed
"""

from experiments import base


def get_config(arg=None):
  base.parse_arg(arg)  # no arg
  c = base.exact_length_protocol(base.get_config(task="reverse", model="dngpu"))
  c.model.update(nmaps=24, dropout=0.1)
  c.optimizer.update(learning_rate=0.02, schedule="exponential", decay_start=1000,
                     decay_steps=125, decay_rate=0.5)
  c.train.num_steps = 1500
  c.checkpoint.every_steps = 250
  c.eval.lengths = (41, 401, 4001)
  c.eval.num_examples = (256, 256, 32)
  return c
