"""Data parallelism with JAX's own SPMD: a mesh with one axis `data`, global arrays, one jit.

Every training and evaluation batch is split over the devices along its first (example) axis,
NamedSharding(mesh, P('data')); parameters, optimizer state and the model's mutable collections
are replicated, NamedSharding(mesh, P()). The jit'd step sees global arrays and XLA inserts the
gradient all-reduce, as in the JAX guide "Distributed arrays and automatic parallelization" and
big_vision. The same jit runs on one device (a 1-device mesh): there is no second code path.
Random draws inside the step (dropout, input noise) are made for the global batch
(jax_threefry_partitionable, the default, makes a sharded draw equal to the unsharded one), so a
run on N devices computes what the 1-device run does, up to the order of the float additions in
the cross-device reductions.

Several hosts (launch.py --coordinator_address=..., jax.distributed.initialize): the mesh spans
every process's devices. Each host makes the whole batch of a step from the fold_in(seed, step)
stream and hands only its own devices' rows to JAX (`shard`, make_array_from_callback), so the
global batch is the same whatever the host count. Making the whole batch and keeping a slice is
what the input pipeline can do without changing its random stream (a batch comes from one
`task.sample(seed, batch, length)` call, so generating only some rows would draw other
examples); it costs little next to a step (BENCHMARKS.md, "Several devices").
"""

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


class DataParallel:
  """The mesh a run uses and how its arrays are laid out on it.

  Args:
    num_devices: devices to use; 0: all (jax.devices(), every process's).

  Raises:
    ValueError: num_devices < 0, more than there are, or not all of them with several processes.
  """

  def __init__(self, num_devices: int = 0):
    available = jax.device_count()
    if num_devices < 0 or num_devices > available:
      raise ValueError(f"train.num_devices={num_devices}, but {available} device(s) are "
                       f"available; set train.num_devices between 1 and {available}, or 0 for all")
    if num_devices not in (0, available) and jax.process_count() > 1:
      raise ValueError(f"train.num_devices={num_devices} with {jax.process_count()} processes: "
                       f"several hosts use all {available} devices; set train.num_devices=0")
    self.num_devices = num_devices or available
    # Auto axes: shardings propagate through the model as in GSPMD (the batch axis stays split,
    # reductions over it become all-reduces) without sharding annotations in the model code.
    self.mesh = jax.make_mesh((self.num_devices,), (DATA_AXIS,), (AxisType.Auto,),
                              devices=jax.devices()[:self.num_devices])
    self.data = NamedSharding(self.mesh, P(DATA_AXIS))
    self.replicated = NamedSharding(self.mesh, P())
    self.num_processes = jax.process_count()
    self.is_primary = jax.process_index() == 0

  @classmethod
  def from_config(cls, config, training: bool = True) -> "DataParallel":
    """The config's train.num_devices (0: all); for training, checked against
    train.batch_size (ValueError)."""
    dp = cls(config.train.num_devices)
    if training:
      dp.check_batch_size(config.train.batch_size)
    return dp

  def describe(self) -> str:
    """One line: how many devices of which kind, in how many processes."""
    kind = self.mesh.devices.flat[0].device_kind
    backend = jax.default_backend() + ("" if kind == jax.default_backend() else f", {kind}")
    hosts = (f"process {jax.process_index()} of {self.num_processes}" if self.num_processes > 1
             else "1 process")
    return (f"devices: {self.num_devices} of {jax.device_count()} ({backend}), {hosts}; "
            f"batches split over mesh axis '{DATA_AXIS}'")

  def check_batch_size(self, batch_size: int, name: str = "train.batch_size") -> None:
    """Raises ValueError (one line, both numbers) unless batch_size divides over the devices."""
    if batch_size % self.num_devices:
      raise ValueError(f"{name}={batch_size} does not divide over {self.num_devices} devices; "
                       f"use a multiple of {self.num_devices} or set train.num_devices")

  def padded_size(self, rows: int) -> int:
    """The smallest multiple of the device count >= rows (evaluation pads its batches to it)."""
    return -(-rows // self.num_devices) * self.num_devices

  def shard(self, tree):
    """Global numpy arrays (batch first) -> global jax.Arrays split over `data`.

    Every leaf's first dimension must divide by num_devices. Each process copies only the rows
    of its own devices.
    """
    return _put(tree, self.data)

  def replicate(self, tree):
    """A pytree of arrays (the same values on every process) -> copies on every device."""
    return _put(tree, self.replicated)


def _put(tree, sharding):
  def put(x):
    x = np.asarray(jax.device_get(x))
    return jax.make_array_from_callback(x.shape, sharding, lambda index: np.asarray(x[index]))
  return jax.tree.map(put, tree)
