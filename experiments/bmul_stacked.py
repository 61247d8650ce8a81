"""Binary multiplication with the operands stacked (task layout 'stacked'), on a 2-core CPU.

experiments/badd_stacked.py's recipe on bmul: cell i < k of the input holds the bit pair
(a_i, b_i) as one symbol, cell k the operator, cells k+1..2k PAD; the product's 2k bits fill
L = 2k+1 cells, each bit where the pairs that make it meet. Trains on operands of up to 20 bits
(L=41) and tests at 200 and 2000 bits (L=401 and 4001: 10x and 100x), as the papers' bmul. A
different protocol from the papers' 'a * b' layout, reported as such.

The improved Neural GPU at m=24 with the exact-length protocol, dropout 0.1 on the candidate, a
fifth of each batch from the 'zeros' hard generator, each training example run for up to twice
its length in steps (model.extra_steps=1), lr 0.02 halving every 250 steps after step 3000,
4000 steps. A pilot (docs/experiment_log.md, "Binary multiplication with the operands stacked").

No arg (the file takes no `:arg`; change fields with --config.a.b=v).

  python launch.py --config=experiments/bmul_stacked.py --workdir=runs/bmul_stacked
  python launch.py --config=experiments/bmul_stacked.py --seeds=0-1 --parallel=2 \
      --workdir=runs/bmul_stacked
"""

from experiments import base


def get_config(arg=None):
  base.parse_arg(arg)  # no arg
  c = base.exact_length_protocol(base.get_config(task="bmul", model="dngpu", layout="stacked"))
  c.model.update(nmaps=24, dropout=0.1, extra_steps=1.0)
  c.optimizer.update(learning_rate=0.02, schedule="exponential", decay_start=3000,
                     decay_steps=250, decay_rate=0.5)
  c.train.update(num_steps=4000, max_length=41, hard_fraction=0.2)
  c.checkpoint.update(every_steps=500, keep_every_steps=1000)
  c.eval.update(lengths=(41, 401, 4001), num_examples=(256, 256, 32), hard_kinds="zeros")
  return c
