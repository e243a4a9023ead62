"""CPU runs: tell glibc to keep freed memory for reuse (what benchmarks/train_throughput.py does).

An XLA:CPU train step allocates its temporaries (hundreds of MB for a small T5) anew
each step. glibc's malloc serves blocks that large with mmap and hands them back to the
kernel on free, so every step faults the same pages in again: 15-35% of a small model's
step time on a 2-core machine. One arena, no mmap for large blocks and no trimming keep
them mapped instead (the environment equivalent: MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_=2147483647).

`flan-jax train/eval/infer/generate` call `retain_freed_memory_on_cpu()` first. It acts
only where the C library is glibc and JAX will run on the CPU (JAX_PLATFORMS=cpu, or no
GPU/TPU plugin installed): on an accelerator host the large buffers live in device
memory, and keeping freed host memory would only raise the process's resident size.
FLAN_JAX_RETAIN_FREED_MEMORY=0 turns it off, =1 forces it on.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os

ENV = "FLAN_JAX_RETAIN_FREED_MEMORY"
_ACCELERATOR_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin", "libtpu")
_applied = False


def retain_freed_memory() -> bool:
  """glibc malloc: one arena, no mmap for large blocks, no trimming. Shapes only arenas made
  afterwards, so call it before threads start. False where the C library is not glibc."""
  global _applied
  try:
    mallopt = ctypes.CDLL("libc.so.6").mallopt
  except (OSError, AttributeError):
    return False
  m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # <malloc.h>
  _applied = all(mallopt(option, value) == 1
                 for option, value in ((m_arena_max, 1), (m_mmap_max, 0), (m_trim_threshold, 2**31 - 1)))
  return _applied


def runs_on_cpu(env=None) -> bool:
  """Whether JAX's default backend will be the CPU, decided without starting a backend."""
  env = os.environ if env is None else env
  platforms = env.get("JAX_PLATFORMS", "").strip().lower()
  if platforms:
    return platforms.split(",")[0] == "cpu"
  return not any(importlib.util.find_spec(name) is not None for name in _ACCELERATOR_PLUGINS)


def retain_freed_memory_on_cpu(env=None) -> bool:
  """The entry points' call: applies `retain_freed_memory` where it helps (module docstring)."""
  env = os.environ if env is None else env
  choice = env.get(ENV, "").strip().lower()
  if choice in ("0", "off", "false"):
    return False
  if choice in ("1", "on", "true") or runs_on_cpu(env):
    return retain_freed_memory()
  return False


def applied() -> bool:
  return _applied
