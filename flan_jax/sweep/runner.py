"""`flan-jax sweep run`: every run trained then evaluated on this machine, each in a fresh process."""
from __future__ import annotations

import os
import re
import json
import subprocess
import sys
import time
from typing import Sequence


from flan_jax.sweep.grid import Run, SweepGrid, flag
from flan_jax.sweep.manifest import MANIFEST, read_manifest, write_manifest


def _eval_args(grid: SweepGrid, run: Run) -> list[str]:
  return ([f"--gin_file={grid.eval_recipe}", f"--gin.CHECKPOINT_PATH={run.model_dir!r}"]
          + [flag(b) for b in grid.eval_overrides])


def latest_results(model_dir: str) -> dict | None:
  """The eval results JSON of the highest step under MODEL_DIR/eval, or None."""
  eval_dir = os.path.join(model_dir, "eval")
  best, best_step = None, -1
  if os.path.isdir(eval_dir):
    for f in os.listdir(eval_dir):
      m = re.fullmatch(r"results_(\d+|init)\.json", f)
      if m:
        step = int(m.group(1)) if m.group(1).isdigit() else 0
        if step > best_step:
          best, best_step = os.path.join(eval_dir, f), step
  if best is None:
    return None
  with open(best) as f:
    return json.load(f)


def run_one(train_args: Sequence[str], eval_args: Sequence[str]) -> int:
  """`flan-jax train` then `flan-jax eval` in this process (one JAX/TF start-up per run);
  prints the seconds each took on the last line."""
  from flan_jax.evaluation import evaluate as eval_lib
  from flan_jax.training import train as train_lib
  t0 = time.perf_counter()
  train_lib.main(list(train_args))  # each entry point parses its own gin config afresh
  t1 = time.perf_counter()
  eval_lib.main(list(eval_args))
  print(f"SWEEP_TIMES {t1 - t0:.1f} {time.perf_counter() - t1:.1f}", flush=True)
  return 0


def _subprocess(run: Run, eval_args: Sequence[str], log_path: str) -> tuple[float, float]:
  """Trains and evaluates one run in a fresh Python process; (train, eval) seconds."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  args = [sys.executable, "-m", "flan_jax.sweep.sweep_cli", "_one", *run.gin_args(), "--", *eval_args]
  with open(log_path, "w") as log:
    rc = subprocess.call(args, stdout=log, stderr=subprocess.STDOUT, env=env)
  with open(log_path) as f:
    lines = f.readlines()
  if rc:
    raise RuntimeError(f"run {run.name} failed (exit {rc}); log {log_path}:\n{''.join(lines[-25:])}")
  times = [ln.split()[1:] for ln in lines if ln.startswith("SWEEP_TIMES")][-1]
  return float(times[0]), float(times[1])


def run_local(grid: SweepGrid, runs: Sequence[Run], root: str, *, say=print) -> dict:
  """Trains then evaluates each run in turn (skipping runs that already have results)."""
  logs = os.path.join(root, "logs")
  os.makedirs(logs, exist_ok=True)
  timings = {}
  if os.path.isfile(os.path.join(root, MANIFEST)):  # a resumed sweep keeps the earlier runs' timings
    timings = read_manifest(root)[2]
  write_manifest(root, grid, runs, timings)
  for i, r in enumerate(runs, 1):
    if latest_results(r.model_dir) is not None:
      say(f"[{i}/{len(runs)}] {r.name}: has eval results, skipped")
      continue
    t_train, t_eval = _subprocess(r, _eval_args(grid, r), os.path.join(logs, f"{r.name}.log"))
    timings[r.name] = {"train_s": round(t_train, 1), "eval_s": round(t_eval, 1)}
    say(f"[{i}/{len(runs)}] {r.name}: trained in {t_train:.0f}s, evaluated in {t_eval:.0f}s")
    write_manifest(root, grid, runs, timings)
  return timings
