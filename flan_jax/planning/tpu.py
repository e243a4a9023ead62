"""Cloud TPU slices as libtpu's ahead-of-time compiler knows them.

`topology_devices(parse_compilable('v4-1024'))` returns the 512 abstract TPU v4 devices of that slice
(`jax.experimental.topologies.get_topology_desc`), for lowering and compiling a
program for XLA:TPU on a machine without TPUs. Slices are `planning.topology.Topology`,
the planner's own type (its `topology_name`, `shape`, `wrap` and `chip` are libtpu's).
"""
from __future__ import annotations

import contextlib
import importlib.util
import os

from flan_jax.planning.topology import Topology

INSTALL_HINT = 'pip install -e ".[tpu]"  (or: pip install "jax[tpu]", which brings libtpu)'


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


def topology_devices(sl: Topology, num_slices: int = 1) -> list:
  """The abstract devices of `num_slices` copies of TPU slice `sl` (multi-slice over DCN)."""
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
