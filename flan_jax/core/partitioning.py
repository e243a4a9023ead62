"""Device meshes and the one table that maps logical axis names onto them.

The mesh always has the three axes ('data', 'fsdp', 'model'):
  data  - pure data parallelism (parameters replicated),
  fsdp  - data parallelism with parameters and optimizer state sharded (ZeRO-3),
  model - tensor parallelism over heads / mlp / vocab.
Modules name their dimensions (`batch`, `embed`, `mlp`, ...); `LOGICAL_AXIS_RULES`
below is the only place those names meet mesh axes. A mesh axis is used at most
once per array, so `embed` takes 'fsdp' on parameters but stays unsharded on
activations, whose `batch` dimension already uses 'fsdp'.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Sequence

import flax.linen as nn
import gin
import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "model")

# Order matters: for each logical name the first rule whose mesh axis is still free wins.
LOGICAL_AXIS_RULES: tuple[tuple[str, Any], ...] = (
    ("batch", ("data", "fsdp")),
    ("vocab", "model"),
    ("mlp", "model"),
    ("heads", "model"),
    ("kv", None),
    ("embed", "fsdp"),
    # The residual stream between layers when a model shards it (ModelConfig.shard_residual).
    ("residual_embed", "model"),
    ("length", None),
    ("layers", None),
    ("relpos_buckets", None),
    # The decoding KV cache [batch, kv heads, length, head dim] (layers.CACHE_AXES).
    ("cache_batch", ("data", "fsdp")),
    ("cache_heads", "model"),
    ("cache_length", None),
    ("cache_kv", None),
)

PyTree = Any


@gin.configurable
@dataclasses.dataclass(frozen=True)
class MeshConfig:
  """How to lay the devices out. Sizes of -1 absorb the remaining devices.

  `num_partitions` is accepted for T5X compatibility: it sets the `model` axis.
  With `fsdp=True` (and `fsdp_size=-1`) every device not used by `model` shards
  parameters (FSDP); otherwise they all go to `data`.

  `num_slices > 1` (multi-slice TPU: slices joined by the data-center network, DCN) makes
  a hybrid mesh: `fsdp` and `model` stay inside each slice (fast ICI links) and the
  `data` axis is the slices times each slice's own data size, so only the gradient
  all-reduce crosses DCN. The sizes above then describe ONE slice's devices.
  """
  model_parallel: int = 1
  fsdp: bool = False
  fsdp_size: int = -1
  data_size: int = -1
  num_partitions: int | None = None
  num_slices: int = 1

  def axis_sizes(self, num_devices: int) -> tuple[int, int, int]:
    model = self.num_partitions if self.num_partitions is not None else self.model_parallel
    if model < 1 or num_devices % model:
      raise ValueError(
          f"MeshConfig: model parallel size {model} does not divide the {num_devices} devices; "
          f"use one of {divisors(num_devices)} (gin: MeshConfig.model_parallel / num_partitions)")
    rest = num_devices // model
    if not self.fsdp:
      data = rest if self.data_size == -1 else self.data_size
      fsdp = 1
    elif self.fsdp_size == -1:
      data = 1 if self.data_size == -1 else self.data_size
      fsdp = rest // data
    else:
      fsdp = self.fsdp_size
      data = rest // fsdp if self.data_size == -1 else self.data_size
    if data * fsdp * model != num_devices:
      raise ValueError(
          f"MeshConfig: data={data} x fsdp={fsdp} x model={model} = {data * fsdp * model} "
          f"but there are {num_devices} devices (gin: MeshConfig.data_size / fsdp_size)")
    return data, fsdp, model

  def mesh_shape(self, num_devices: int) -> tuple[int, int, int]:
    """(data, fsdp, model) over `num_devices` in all, `num_slices` slices included."""
    if self.num_slices < 1 or num_devices % self.num_slices:
      raise ValueError(f"MeshConfig.num_slices={self.num_slices} does not divide the "
                       f"{num_devices} devices")
    data, fsdp, model = self.axis_sizes(num_devices // self.num_slices)
    return data * self.num_slices, fsdp, model


def divisors(n: int) -> list[int]:
  return [d for d in range(1, n + 1) if n % d == 0]


def _slice_of(device) -> int:
  """The slice a device belongs to: TPU devices know it; elsewhere, its process."""
  return getattr(device, "slice_index", device.process_index)


def hybrid_device_array(devices: Sequence[jax.Device], config: MeshConfig,
                        slice_of=_slice_of) -> np.ndarray:
  """Devices as a (data, fsdp, model) array for `config.num_slices` slices: each slice's
  devices form a block of `config.axis_sizes(devices per slice)`, and the blocks stack
  along `data` (slice-major), so `fsdp` and `model` never cross a slice."""
  groups: dict[int, list] = {}
  for d in devices:
    groups.setdefault(slice_of(d), []).append(d)
  if len(groups) != config.num_slices or len({len(g) for g in groups.values()}) != 1:
    sizes = {k: len(g) for k, g in sorted(groups.items())}
    raise ValueError(f"MeshConfig.num_slices={config.num_slices}, but the devices form "
                     f"{len(groups)} slice(s) of sizes {sizes}; set num_slices to the number "
                     "of slices the job runs on (launch --num_slices)")
  per_slice = len(next(iter(groups.values())))
  shape = config.axis_sizes(per_slice)
  blocks = []
  for _, group in sorted(groups.items()):
    group = sorted(group, key=lambda d: d.id)
    try:  # TPU: lay the slice out along its physical torus
      block = mesh_utils.create_device_mesh(shape, devices=group, allow_split_physical_axes=True)
    except (ValueError, NotImplementedError, AssertionError):
      block = np.asarray(group).reshape(shape)
    blocks.append(block)
  return np.concatenate(blocks, axis=0)


def make_mesh(config: MeshConfig = MeshConfig(), devices: Sequence[jax.Device] | None = None,
              *, slice_of=_slice_of) -> Mesh:
  """A ('data', 'fsdp', 'model') mesh over `devices` (default: all, every host); a hybrid
  ICI x DCN mesh when `config.num_slices > 1` (see `MeshConfig`)."""
  devices = list(jax.devices() if devices is None else devices)
  auto = (jax.sharding.AxisType.Auto,) * len(MESH_AXES)  # shardings propagate (GSPMD), as pjit
  if config.num_slices < 1:
    raise ValueError(f"MeshConfig.num_slices={config.num_slices}; use 1 or more")
  if config.num_slices > 1:
    return Mesh(hybrid_device_array(devices, config, slice_of), MESH_AXES, axis_types=auto)
  shape = config.axis_sizes(len(devices))
  if len(devices) == len(jax.devices()):
    return jax.make_mesh(shape, MESH_AXES, devices=devices, axis_types=auto)
  return Mesh(np.asarray(devices).reshape(shape), MESH_AXES, axis_types=auto)


def make_abstract_mesh(shape: tuple[int, int, int]) -> jax.sharding.AbstractMesh:
  """A device-free mesh, for planning memory of large topologies."""
  return jax.sharding.AbstractMesh(tuple(shape), MESH_AXES,
                                   axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES))


def logical_to_mesh_spec(logical: P | Sequence[str | None],
                         rules: Sequence[tuple[str, Any]] = LOGICAL_AXIS_RULES) -> P:
  return nn.logical_to_mesh_axes(tuple(logical), rules)


def _spec_tree(logical_specs: PyTree, rules) -> PyTree:
  return jax.tree.map(lambda s: logical_to_mesh_spec(s, rules), logical_specs,
                      is_leaf=lambda x: isinstance(x, P))


def check_divisible(abstract_tree: PyTree, spec_tree: PyTree, mesh_shape: dict[str, int]) -> None:
  """Raises a ValueError naming the parameter whose dimension a mesh axis does not divide."""
  flat_shapes = jax.tree_util.tree_flatten_with_path(abstract_tree)[0]
  flat_specs = jax.tree.leaves(spec_tree, is_leaf=lambda x: isinstance(x, P))
  for (path, leaf), spec in zip(flat_shapes, flat_specs):
    for dim, axes in zip(leaf.shape, tuple(spec) + (None,) * (len(leaf.shape) - len(spec))):
      if axes is None:
        continue
      axes = (axes,) if isinstance(axes, str) else tuple(axes)
      size = math.prod(mesh_shape[a] for a in axes)
      if dim % size:
        name = jax.tree_util.keystr(path)
        ok = [d for d in divisors(dim) if d <= max(size, dim)][:12]
        raise ValueError(
            f"mesh axis {'x'.join(axes)}={size} does not divide dimension {dim} of {name} "
            f"(shape {tuple(leaf.shape)}); choose a mesh size in {ok}")


def shardings_for(abstract_boxed: PyTree, mesh: Mesh,
                  rules: Sequence[tuple[str, Any]] = LOGICAL_AXIS_RULES) -> PyTree:
  """NamedShardings for a tree whose leaves may carry logical axis names (flax boxes).

  Unannotated leaves (step counters, scalars) are replicated.
  """
  logical = nn.get_partition_spec(abstract_boxed)
  specs = _spec_tree(logical, rules)
  check_divisible(nn.unbox(abstract_boxed), specs, dict(mesh.shape))
  return jax.tree.map(lambda s: NamedSharding(mesh, s), specs, is_leaf=lambda x: isinstance(x, P))


def batch_sharding(mesh: Mesh, rank: int = 2) -> NamedSharding:
  """Batch arrays [B, ...]: split over every data-like axis, the rest replicated."""
  return NamedSharding(mesh, logical_to_mesh_spec(("batch",) + (None,) * (rank - 1)))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_parallel_size(mesh: Mesh) -> int:
  return mesh.shape["data"] * mesh.shape["fsdp"]


@contextlib.contextmanager
def mesh_context(mesh: Mesh):
  """Context for tracing sharded code: the mesh plus the logical axis rules under which
  `nn.with_logical_constraint` hints apply."""
  with jax.set_mesh(mesh), nn.logical_axis_rules(LOGICAL_AXIS_RULES):
    yield


def axis_rules():
  """Just the logical axis rules (no mesh), e.g. for tracing against an abstract mesh."""
  return nn.logical_axis_rules(LOGICAL_AXIS_RULES)
