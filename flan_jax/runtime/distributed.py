"""Multi-process start-up: `jax.distributed` from the environment.

- Cloud TPU pods: `jax.distributed.initialize()` discovers everything itself; set
  FLAN_JAX_DISTRIBUTED=1 (the TPU launcher does) or rely on TPU_WORKER_HOSTNAMES listing
  more than one host.
- GPU clusters and local multi-process runs: JAX_COORDINATOR_ADDRESS (host:port),
  JAX_NUM_PROCESSES and JAX_PROCESS_ID (SLURM's variables work too: jax reads them
  when JAX_COORDINATOR_ADDRESS is unset and SLURM_JOB_ID is present).
Single-process runs set none of these and skip initialisation.
"""
from __future__ import annotations

import os

import jax

_initialized = False


def _tpu_workers(env) -> int:
  """Hosts of a TPU slice (TPU_WORKER_HOSTNAMES lists them, comma-separated). One host is
  a single process: nothing to coordinate (console.quiet_libtpu sets "localhost" on
  machines without TPU chips)."""
  return len([h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h.strip()])


def initialize_from_env(env: dict | None = None) -> bool:
  """Initialises jax.distributed when the environment describes a multi-process job."""
  global _initialized
  env = os.environ if env is None else env
  if _initialized:
    return True
  coordinator = env.get("JAX_COORDINATOR_ADDRESS")
  if coordinator:
    num = env.get("JAX_NUM_PROCESSES")
    pid = env.get("JAX_PROCESS_ID")
    if num is None or pid is None:
      raise ValueError("JAX_COORDINATOR_ADDRESS is set, so JAX_NUM_PROCESSES and JAX_PROCESS_ID must be too")
    local = env.get("JAX_LOCAL_DEVICE_IDS")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=int(num), process_id=int(pid),
                               local_device_ids=[int(i) for i in local.split(",")] if local else None)
  elif env.get("FLAN_JAX_DISTRIBUTED") == "1" or _tpu_workers(env) > 1 or "SLURM_JOB_ID" in env:
    jax.distributed.initialize()
  else:
    return False
  _initialized = True
  return True
