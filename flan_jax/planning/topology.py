"""Accelerator topologies: one type for the analytic planner, the compiled planner and the launchers.

Names follow Cloud TPU: v2/v3/v4/v5p-N count TensorCores (two per chip: v4-512 is
256 chips), v5e/v6e-N count chips; GPUs are `h100x64` (64 GPUs). A TPU slice that
libtpu's ahead-of-time compiler knows (v4, v5p, v5e, v6e, powers of two) also has a
physical torus shape and a libtpu topology name, those of MaxText's `train_compile`
table (v4-8 -> 'v4:2x2x1', v4-1024 -> 'v4:8x8x8', v5e-16 -> 'v5e:4x4').
"""
from __future__ import annotations

import dataclasses
import re

from flan_jax.training import flops

GiB = 2.0 ** 30

# HBM per chip (GiB). On v2/v3 a chip is two JAX devices that split it.
HBM_GIB_PER_CHIP = {"v2": 16, "v3": 32, "v4": 32, "v5e": 16, "v5p": 95, "v6e": 32,
                    "a100": 80, "h100": 80, "h200": 141e9 / GiB}
CORES_IN_NAME = {"v2", "v3", "v4", "v5p"}  # slice names count TensorCores, two per chip
GPU_FAMILIES = ("a100", "h100", "h200")
SLICE_SIZES = {  # names tried, in order, when looking for the smallest slice that fits
    "tpu_cores": [8 * 2 ** i for i in range(12)],           # v4-8 ... v4-16384
    "tpu_chips": [1, 4, 8, 16, 32, 64, 128, 256],            # v5e-1 ... v5e-256
    "gpu": [1, 2, 4, 8] + [16 * 2 ** i for i in range(9)],   # h100x1 ... h100x4096
}


@dataclasses.dataclass(frozen=True)
class Chip:
  """What libtpu's compiler and the roofline need of a TPU chip."""
  prefix: str             # libtpu's topology name prefix
  chip_config: str        # 'megacore': one device per chip on v4/v5p
  dims: int               # torus dimensions
  hbm_bytes_per_s: float
  ici_bytes_per_s: float  # all ICI links of a chip together


# Vendor figures (Cloud TPU system architecture pages): HBM bandwidth and inter-chip
# interconnect bandwidth per chip; HBM capacity above, bf16 peaks in flan_jax.training.flops.
CHIPS = {
    "v4": Chip("v4", "megacore", 3, 1200e9, 2400e9 / 8),
    "v5p": Chip("v5", "megacore", 3, 2765e9, 4800e9 / 8),
    "v5e": Chip("v5e", "default", 2, 819e9, 1600e9 / 8),
    "v6e": Chip("v6e", "default", 2, 1640e9, 3584e9 / 8),
}
MAX_CHIPS = {3: 4096, 2: 256}


def _torus(chips: int, dims: int) -> tuple[int, ...] | None:
  """Physical shape of a power-of-two slice: double the smallest axis (the last of equals)."""
  if chips < 1 or chips & (chips - 1):
    return None
  if dims == 2:
    shape = [1, 1]
  else:
    if chips < 4:
      return None
    shape, chips = [2, 2, 1], chips // 4
  while chips > 1:
    i = max(j for j in range(dims) if shape[j] == min(shape))
    shape[i] *= 2
    chips //= 2
  return tuple(shape)


@dataclasses.dataclass(frozen=True)
class Topology:
  family: str
  size: int  # the number in the name

  @property
  def name(self) -> str:
    return f"{self.family}x{self.size}" if self.is_gpu else f"{self.family}-{self.size}"

  @property
  def is_gpu(self) -> bool:
    return self.family in GPU_FAMILIES

  @property
  def chips(self) -> int:
    return self.size // 2 if self.family in CORES_IN_NAME else self.size

  @property
  def num_devices(self) -> int:
    return self.chips * flops.DEVICES_PER_CHIP.get(self.family, 1)

  @property
  def hbm_gib_per_chip(self) -> float:
    return HBM_GIB_PER_CHIP[self.family]

  @property
  def hbm_bytes_per_device(self) -> float:
    return HBM_GIB_PER_CHIP[self.family] * GiB / flops.DEVICES_PER_CHIP.get(self.family, 1)

  @property
  def peak_flops_per_chip(self) -> float:
    return flops.PEAK_FLOPS_PER_CHIP[self.family]

  @property
  def peak_flops_per_device(self) -> float:
    return flops.PEAK_FLOPS_PER_CHIP[self.family] / flops.DEVICES_PER_CHIP.get(self.family, 1)

  def family_sizes(self) -> list[int]:
    key = "gpu" if self.is_gpu else ("tpu_cores" if self.family in CORES_IN_NAME else "tpu_chips")
    return SLICE_SIZES[key]

  def with_size(self, size: int) -> "Topology":
    return dataclasses.replace(self, size=size)

  # -- what libtpu's compiler needs (TPU v4 / v5p / v5e / v6e slices only) -----------------

  @property
  def chip(self) -> Chip | None:
    return CHIPS.get(self.family)

  @property
  def shape(self) -> tuple[int, ...] | None:
    """Physical torus shape, None where libtpu has no such slice."""
    return _torus(self.chips, self.chip.dims) if self.chip else None

  @property
  def compilable(self) -> bool:
    return self.chip is not None and self.shape is not None and self.chips <= MAX_CHIPS[self.chip.dims]

  @property
  def topology_name(self) -> str:
    return f"{self.chip.prefix}:{'x'.join(map(str, self.shape))}"

  @property
  def wrap(self) -> tuple[bool, ...]:
    """Wrap-around links: full 4-long (or longer) axes of big slices are tori."""
    if self.chip.dims == 3:
      return (self.chips >= 64,) * 3
    return tuple(n >= 16 for n in self.shape) + (False,)


def parse_topology(name: str) -> Topology:
  """'v4-512', 'v5p-1024', 'v5e-256', 'h100x64' -> Topology."""
  s = name.strip().lower()
  m = re.fullmatch(r"(v2|v3|v4|v5p|v5e|v5litepod|v6e)-(\d+)", s) or re.fullmatch(r"(a100|h100|h200)x(\d+)", s)
  if not m:
    raise ValueError(f"unknown topology {name!r}; use e.g. v4-512, v5p-1024, v5e-256, v6e-64, v3-32, h100x64, "
                     f"a100x8 (TPU names count TensorCores for v2/v3/v4/v5p, chips for v5e/v6e)")
  family = "v5e" if m.group(1) == "v5litepod" else m.group(1)
  size = int(m.group(2))
  if family in CORES_IN_NAME and size % 2:
    raise ValueError(f"topology {name!r}: {family} slice names count TensorCores (two per chip), so N is even")
  return Topology(family, size)


def valid_compile_names() -> str:
  out = []
  for fam, c in CHIPS.items():
    per = 2 if fam in CORES_IN_NAME else 1
    first = (4 if c.dims == 3 else 1) * per
    out.append(f"{fam}-{first}, {fam}-{first * 2}, ... {fam}-{MAX_CHIPS[c.dims] * per} (powers of two)")
  return "; ".join(out)


def parse_compilable(name: str) -> Topology:
  """A topology libtpu can compile for ('v4-1024'); a clear error naming the valid ones otherwise."""
  try:
    t = parse_topology(name)
  except ValueError:
    t = None
  if t is None or t.chip is None:
    raise ValueError(f"--compile needs a TPU slice libtpu can compile for; {name!r} is not one. "
                     f"Valid: {valid_compile_names()}")
  if not t.compilable:
    raise ValueError(f"no {t.family} slice is called {name!r}. Valid: {valid_compile_names()}")
  return t
