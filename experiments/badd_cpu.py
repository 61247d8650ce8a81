"""Binary addition with the improved Neural GPU, sized for a 2-core CPU (the default until
2026-11-22; docs/experiment_log.md, "Binary addition on a CPU", has every run of it).

Trains on 20-bit operands (length 41, every length bin every step, as in the DNGPU paper) with
m=24 maps and no dropout, which learned the training range fastest on a CPU in our runs. The
learning rate stays at 0.02 for 4000 steps, then halves every 250 steps so the model settles.
About 15 minutes of training on an idle 2-core CPU. Of four seeds only seed 0 generalizes (2.3%
of the 10x sums wrong); seeds 1 and 3 learn a rule that breaks past the training range, and
seed 2 did not learn the training range in 5000 steps.

No arg (the file takes no `:arg`; change fields with --config.a.b=v).

  python launch.py --config=experiments/badd_cpu.py --workdir=runs/badd_cpu
"""

from experiments import base


def get_config(arg=None):
  base.parse_arg(arg)  # no arg
  c = base.exact_length_protocol(base.get_config(task="badd", model="dngpu"))
  c.model.update(nmaps=24, dropout=0.0)
  c.optimizer.update(learning_rate=0.02, schedule="exponential", decay_start=4000,
                     decay_steps=250, decay_rate=0.5)
  c.train.num_steps = 5000
  c.checkpoint.every_steps = 250
  c.eval.lengths = (41, 401, 4001)
  c.eval.num_examples = (256, 256, 8)
  return c
