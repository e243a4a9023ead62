"""Training metrics: the console progress line and TensorBoard summaries (process 0 only)."""
from __future__ import annotations

import json
import os
import re
import time

import jax
import numpy as np


def cpu_peak_flops() -> float:
  """A rough fp32 peak for the host CPU: cores x clock x FMA width, from /proc/cpuinfo.

  Used only to print an MFU estimate on CPU; accelerators use flops.PEAK_FLOPS_PER_CHIP.
  """
  try:
    info = open("/proc/cpuinfo").read()
  except OSError:
    info = ""
  mhz = [float(m) for m in re.findall(r"cpu MHz\s*:\s*([\d.]+)", info)] or [2500.0]
  flags = info.split()
  per_cycle = 64 if "avx512f" in flags else 32 if "fma" in flags else 16  # fp32 FLOPs/cycle/core
  return (os.cpu_count() or 1) * max(mhz) * 1e6 * per_cycle


def _fmt_duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _append_line(path: str, line: str) -> None:
  """One whole line in one write (O_APPEND), never through a symbolic link."""
  if "://" in path:
    with open(path, "a") as f:
      f.write(line)
    return
  fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
  try:
    os.write(fd, line.encode())
  finally:
    os.close(fd)


def repair_jsonl(path: str, last_step: int) -> int:
  """Keeps the whole, parseable lines of a metrics log whose steps increase and are at most
  `last_step` (a torn last line, and lines of steps a resumed run will log again, go);
  rewrites the file atomically when anything went. Returns the number of lines dropped."""
  if not os.path.isfile(path) or os.path.islink(path):
    return 0
  with open(path, "rb") as f:
    raw = f.read()
  kept, dropped, previous = [], 0, -1
  for line in raw.split(b"\n"):
    if not line.strip():
      continue
    try:
      step = int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
      dropped += 1
      continue
    if step > last_step or step <= previous:
      dropped += 1
      continue
    kept.append(line)
    previous = step
  if dropped or (raw and not raw.endswith(b"\n")):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
      f.write(b"".join(line + b"\n" for line in kept))
    os.replace(tmp, path)
  return dropped


class MetricsLogger:
  """Averages step metrics over each logging interval and reports them."""

  def __init__(self, model_dir: str, total_steps: int, flops_per_step: float, peak_flops: float | None,
               write: bool = True, resume_step: int = 0):
    """`resume_step`: the step the run starts from; train_metrics.jsonl is repaired to hold only
    whole lines of steps up to it (see `repair_jsonl`), so that it stays valid JSONL with
    increasing steps after a kill mid-write or a fallback to an earlier checkpoint."""
    self.total_steps, self.flops_per_step, self.peak_flops = total_steps, flops_per_step, peak_flops
    self.write = write and jax.process_index() == 0
    self.writer = None
    self.jsonl_path = os.path.join(model_dir, "train_metrics.jsonl")
    if self.write and "://" not in self.jsonl_path:
      if os.path.islink(self.jsonl_path):
        raise ValueError(f"{self.jsonl_path} is a symbolic link; flan-jax never writes through one: remove it and "
                         "rerun")
      repair_jsonl(self.jsonl_path, resume_step)
    if self.write:
      from tensorboardX import SummaryWriter
      self.writer = SummaryWriter(os.path.join(model_dir, "train"))
    self._pending: list[dict] = []
    self._tokens = 0
    self._t0 = time.perf_counter()
    self.history: list[dict] = []

  def add(self, metrics: dict, tokens: int) -> None:
    self._pending.append(metrics)  # device arrays: no host sync until `log`
    self._tokens += tokens

  def reset_clock(self) -> None:
    """Restart timing (after compilation) so throughput reflects steady state."""
    self._t0 = time.perf_counter()
    self._tokens = 0
    self._pending.clear()

  def log(self, step: int) -> dict:
    if not self._pending:
      return {}
    fetched = jax.device_get(self._pending)
    n = len(fetched)
    avg = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
    dt = time.perf_counter() - self._t0
    avg["tokens_per_sec"] = self._tokens / dt
    avg["steps_per_sec"] = n / dt
    if self.peak_flops:
      avg["mfu"] = self.flops_per_step * avg["steps_per_sec"] / self.peak_flops
    eta = (self.total_steps - step) / max(avg["steps_per_sec"], 1e-9)
    avg["step"] = step
    self.history.append(avg)
    if self.write:
      mfu = f"{100 * avg['mfu']:.1f}%" if "mfu" in avg else "n/a"
      lr = f" | lr {avg['learning_rate']:.2e}" if "learning_rate" in avg else ""
      print(f"step {step:>6}/{self.total_steps} | loss {avg['loss']:.4f} | acc {avg['accuracy']:.3f} | "
            f"z_loss {avg['z_loss']:.2e} | grad_norm {avg['grad_norm']:.3f}{lr} | "
            f"{avg['tokens_per_sec']:,.0f} tok/s | MFU {mfu} | ETA {_fmt_duration(eta)}", flush=True)
      for k, v in avg.items():
        if k != "step":
          self.writer.add_scalar(f"train/{k}", v, step)
      self.writer.flush()
      _append_line(self.jsonl_path, json.dumps(avg) + "\n")
    self._pending.clear()
    self._tokens = 0
    self._t0 = time.perf_counter()
    return avg

  def close(self):
    if self.writer is not None:
      self.writer.close()
