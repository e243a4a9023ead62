"""What a topology name means to a launcher: Cloud TPU accelerator types, workers, GPU nodes.

Names are parsed by `flan_jax.planning.plan.parse_topology` (the planner and the launcher agree
on what `v4-512` is). TPU workers are TPU VMs, one JAX process each:
  v2/v3/v4/v5p  4 chips per VM (8 TensorCores on v2/v3/v4/v5p names): v4-512 = 256 chips = 64 VMs;
  v5e/v6e       slices of at most 8 chips are one VM; larger slices use 4-chip VMs
                (Cloud TPU docs, "VMs" column: v6e 16x16 = 256 chips on 64 VMs).
"""
from __future__ import annotations

import dataclasses

from flan_jax.planning.plan import Topology, parse_topology

__all__ = ["Topology", "parse_topology", "TpuSlice", "tpu_slice", "GpuCluster", "gpu_cluster"]

# Default TPU VM software versions (gcloud --version / --runtime-version), by family.
RUNTIME_VERSIONS = {
    "v2": "tpu-ubuntu2204-base", "v3": "tpu-ubuntu2204-base", "v4": "tpu-ubuntu2204-base",
    "v5e": "v2-alpha-tpuv5-lite", "v5p": "v2-alpha-tpuv5", "v6e": "v2-alpha-tpuv6e",
}
# Accelerator names as SkyPilot spells them, by plan's GPU family.
SKYPILOT_ACCELERATORS = {"h100": "H100", "h200": "H200", "a100": "A100-80GB"}


@dataclasses.dataclass(frozen=True)
class TpuSlice:
  """One Cloud TPU slice: `accelerator_type` as gcloud and xpk spell it, and its VMs."""
  topology: Topology
  accelerator_type: str
  workers: int           # TPU VMs = JAX processes in one slice
  chips_per_worker: int
  runtime_version: str


def tpu_slice(topology: Topology | str) -> TpuSlice:
  t = parse_topology(topology) if isinstance(topology, str) else topology
  if t.is_gpu:
    raise ValueError(f"topology {t.name} is a GPU cluster; TPU launchers (tpu-vm, xpk) need a TPU slice "
                     f"such as v4-512 or v5p-1024 (GPU clusters: --target=slurm or --target=skypilot)")
  if t.family in ("v5e", "v6e"):
    per_worker = t.chips if t.chips <= 8 else 4
    accelerator = f"v5litepod-{t.size}" if t.family == "v5e" else t.name
  else:
    per_worker = min(4, t.chips)
    accelerator = t.name
  if t.chips % per_worker:
    raise ValueError(f"topology {t.name} has {t.chips} chips, not a whole number of {per_worker}-chip TPU VMs")
  return TpuSlice(t, accelerator, t.chips // per_worker, per_worker, RUNTIME_VERSIONS[t.family])


@dataclasses.dataclass(frozen=True)
class GpuCluster:
  topology: Topology  # e.g. h100x64
  num_nodes: int
  gpus_per_node: int

  @property
  def skypilot_accelerator(self) -> str:
    return SKYPILOT_ACCELERATORS[self.topology.family]


def gpu_cluster(topology: Topology | str | None, num_nodes: int | None, gpus_per_node: int,
                gpu: str = "h100") -> GpuCluster:
  """The cluster from `--topology=h100x64` or from `--num_nodes` x `--gpus_per_node` (both: must agree)."""
  if gpus_per_node < 1:
    raise ValueError(f"--gpus_per_node={gpus_per_node}; give at least 1")
  if topology is None:
    if num_nodes is None:
      raise ValueError("GPU targets need --num_nodes (with --gpus_per_node, default 8) or --topology=h100xN")
    topology = parse_topology(f"{gpu}x{num_nodes * gpus_per_node}")
  t = parse_topology(topology) if isinstance(topology, str) else topology
  if not t.is_gpu:
    raise ValueError(f"topology {t.name} is a TPU slice; GPU targets (slurm, skypilot) need e.g. h100x64 "
                     f"(TPU slices: --target=tpu-vm or --target=xpk)")
  if t.num_devices % gpus_per_node:
    raise ValueError(f"topology {t.name} has {t.num_devices} GPUs, not a multiple of --gpus_per_node={gpus_per_node}")
  nodes = t.num_devices // gpus_per_node
  if num_nodes is not None and num_nodes != nodes:
    raise ValueError(f"--num_nodes={num_nodes} x --gpus_per_node={gpus_per_node} = {num_nodes * gpus_per_node} GPUs "
                     f"but --topology={t.name} has {t.num_devices}; give one of them")
  return GpuCluster(t, nodes, gpus_per_node)
