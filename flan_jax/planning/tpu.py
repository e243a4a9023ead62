"""Cloud TPU slices as libtpu's ahead-of-time compiler knows them.

`topology_devices('v4-1024')` returns the 512 abstract TPU v4 devices of that slice
(`jax.experimental.topologies.get_topology_desc`), for lowering and compiling a
program for XLA:TPU on a machine without TPUs. Slice names follow Cloud TPU, as in
`flan_jax.plan`: v4/v5p-N count TensorCores (two per chip, one megacore device),
v5e/v6e-N count chips. Physical shapes are those of MaxText's `train_compile`
topology table (v4-8 -> 'v4:2x2x1', v4-1024 -> 'v4:8x8x8', v5e-16 -> 'v5e:4x4').
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os

from flan_jax import flops

INSTALL_HINT = 'pip install -e ".[tpu]"  (or: pip install "jax[tpu]", which brings libtpu)'


@dataclasses.dataclass(frozen=True)
class Chip:
  prefix: str            # libtpu's topology name prefix
  chip_config: str       # 'megacore': one device per chip on v4/v5p
  dims: int              # torus dimensions
  hbm_gib: float         # HBM per chip
  hbm_bytes_per_s: float
  ici_bytes_per_s: float  # all ICI links of a chip together
  counts_cores: bool      # slice names count TensorCores

  def peak_flops(self, family: str) -> float:
    return flops.PEAK_FLOPS_PER_CHIP[family]


# Vendor figures (Cloud TPU system architecture pages): HBM capacity and bandwidth,
# inter-chip interconnect bandwidth per chip; bf16 peaks live in flan_jax.flops.
CHIPS = {
    "v4": Chip("v4", "megacore", 3, 32, 1200e9, 2400e9 / 8, True),
    "v5p": Chip("v5", "megacore", 3, 95, 2765e9, 4800e9 / 8, True),
    "v5e": Chip("v5e", "default", 2, 16, 819e9, 1600e9 / 8, False),
    "v6e": Chip("v6e", "default", 2, 32, 1640e9, 3584e9 / 8, False),
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


def valid_names() -> str:
  out = []
  for fam, c in CHIPS.items():
    per = 2 if c.counts_cores else 1
    first = (4 if c.dims == 3 else 1) * per
    out.append(f"{fam}-{first}, {fam}-{first * 2}, ... {fam}-{MAX_CHIPS[c.dims] * per} (powers of two)")
  return "; ".join(out)


@dataclasses.dataclass(frozen=True)
class Slice:
  family: str
  size: int  # the number in the name

  @property
  def name(self) -> str:
    return f"{self.family}-{self.size}"

  @property
  def chip(self) -> Chip:
    return CHIPS[self.family]

  @property
  def chips(self) -> int:
    return self.size // 2 if self.chip.counts_cores else self.size

  @property
  def shape(self) -> tuple[int, ...]:
    return _torus(self.chips, self.chip.dims)

  @property
  def topology_name(self) -> str:
    return f"{self.chip.prefix}:{'x'.join(map(str, self.shape))}"

  @property
  def wrap(self) -> tuple[bool, ...]:
    """Wrap-around links: full 4-long (or longer) axes of big slices are tori."""
    if self.chip.dims == 3:
      return (self.chips >= 64,) * 3
    return tuple(n >= 16 for n in self.shape) + (False,)


def parse_slice(name: str) -> Slice:
  """'v4-1024' -> Slice; a clear error naming the valid slices otherwise."""
  s = name.strip().lower().replace("v5litepod", "v5e")
  fam, _, num = s.partition("-")
  if fam not in CHIPS or not num.isdigit():
    raise ValueError(f"--compile needs a TPU slice libtpu can compile for; {name!r} is not one. "
                     f"Valid: {valid_names()}")
  sl = Slice(fam, int(num))
  if (sl.chip.counts_cores and sl.size % 2) or _torus(sl.chips, sl.chip.dims) is None \
      or sl.chips > MAX_CHIPS[sl.chip.dims]:
    raise ValueError(f"no {fam} slice is called {name!r}. Valid: {valid_names()}")
  return sl


def have_libtpu() -> bool:
  return importlib.util.find_spec("libtpu") is not None


@contextlib.contextmanager
def libtpu_environment(accelerator_type: str):
  """libtpu's settings for compiling without TPUs, for this use only: no metadata-server
  queries, a single local worker, the accelerator type, and no single-process lock file
  (nothing here owns a TPU, so parallel test workers may each load libtpu); restored afterwards."""
  settings = {"TPU_SKIP_MDS_QUERY": "1", "TPU_WORKER_HOSTNAMES": "localhost", "ALLOW_MULTIPLE_LIBTPU_LOAD": "1",
              "TPU_ACCELERATOR_TYPE": accelerator_type, "TPU_STDERR_LOG_LEVEL": "3",
              "TPU_MIN_LOG_LEVEL": "3"}
  saved = {k: os.environ.get(k) for k in settings}
  os.environ.update({k: v for k, v in settings.items() if saved[k] is None or k == "TPU_ACCELERATOR_TYPE"})
  try:
    yield
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v


def topology_devices(sl: Slice, num_slices: int = 1) -> list:
  """The abstract devices of `num_slices` copies of slice `sl` (multi-slice over DCN)."""
  if not have_libtpu():
    raise RuntimeError(f"flan-jax plan --compile needs libtpu (the XLA:TPU compiler); install it with: "
                       f"{INSTALL_HINT}")
  from jax.experimental import topologies
  bounds = (1, 1, 1) if sl.chips == 1 else (2, 2, 1)
  with libtpu_environment(sl.name):
    desc = topologies.get_topology_desc(
        platform="tpu", topology_name=sl.topology_name, chip_config_name=sl.chip.chip_config,
        chips_per_host_bounds=bounds, num_slices=num_slices, wrap=sl.wrap)
  return list(desc.devices)
