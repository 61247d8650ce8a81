"""Binary addition with the DNGPU reference protocol as a whole (LUMII-Syslab/DNGPU, badd).

m=48, one dropout rate 0.5 (keep 0.5) on the embedded input and the candidate, targets that end
in PAD after the sum's last digit, a pool of 10,000 unique examples per length, bins that mix
lengths with every example run for its bin's width in steps (5% shorter items), the reference's
AdaMax (no bias correction, per-element clipping, gradient noise lr * 1e-4), lr 0.01 x0.7 on a
stall (floor lr/60), 20,000 steps; then 1x, 10x and 100x tests, deterministic and with Monte
Carlo dropout (16 passes). Everything but the task's target encoding, the dropout rate and the
step count is the dngpu default of experiments/base.py.

No arg (the file takes no `:arg`; change fields with --config.a.b=v).

  python launch.py --config=experiments/badd_reference.py --workdir=runs/badd_reference
  python launch.py --config=experiments/badd_reference.py --workdir=runs/badd_ref_s1 --config.seed=1
  python launch.py --config=experiments/badd_reference.py --seeds=0-9 --workdir=runs/badd_reference
"""

from experiments import base


def get_config(arg=None):
  base.parse_arg(arg)  # no arg
  c = base.get_config(task="badd", model="dngpu", pad_result=True)
  c.model.update(nmaps=48, dropout=0.5, input_dropout=0.5)
  c.optimizer.learning_rate = 0.01 * 48 / c.model.nmaps
  c.train.num_steps = 20000
  c.checkpoint.update(every_steps=500, keep_every_steps=1000)
  # Monte Carlo dropout beside the deterministic pass: with dropout 0.5 the two differ (README,
  # "Evaluating a checkpoint at 100x"); 17 passes per example make L=4001 hours on a 2-core CPU.
  c.eval.update(lengths=(41, 401, 4001), num_examples=(256, 256, 32),
                hard_kinds="carry,propagate,zeros", mc_dropout_samples=16)
  return c
