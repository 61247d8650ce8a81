"""The lecture's first example: an MLP with 2 tanh hidden units learns XOR.

  python launch.py --config=experiments/xor.py --workdir=runs/xor

Task 'xor' (n_bits=2): the input is two bits, the target has the XOR bit at position 0 and PAD at
position 1 (every position counts in the error, PAD included). XOR is not linearly separable, so
the one hidden layer is what makes it learnable; two units are the fewest that can do it, and with
so few units some initializations get stuck in a poor local minimum. Seed 12 with Adam at lr 0.1
learns it in a few hundred steps (lr 0.05 to 0.2 works too); the evaluation at length 2 should
report sequence error 0. Other seeds are worth a try (--config.seed=N) to see the failures the
lecture warns about.
"""

from experiments import base


def get_config(arg=None):
  del arg
  c = base.get_config(task="xor", model="mlp", n_bits=2)
  c.seed = 12
  c.model.update(depth=1, width=2, activation="tanh")
  c.train.update(num_steps=600, batch_size=32, max_length=2, log_every=50)  # fixed_length = 2
  c.optimizer.learning_rate = 0.1
  c.checkpoint.every_steps = 200
  c.eval.update(lengths=(2,), num_examples=(256,))
  return c
