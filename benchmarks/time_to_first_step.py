"""Time to first step of `flan-jax train`: a first run against a second one that resumes it.

Both runs are the quickstart (gin/recipes/quickstart.gin) in one fresh MODEL_DIR, each a new
process with an empty compilation cache of its own at the start of run 1:
  run 1  starts from nothing: compiles the train step and stores it in the cache;
  run 2  resumes run 1's checkpoint: restores it and loads the step from the cache.
Each is stopped with SIGTERM as soon as it has printed its first progress line ("step N/M |
loss ...") (the run saves that step and exits 75, as on a preemption), so a round costs two
start-ups. What is measured: seconds from starting the process to reading that progress line
on its stdout; the run's own "compiled and ran the first step in X s" figure (from the loop's
start) is printed beside it.

    python benchmarks/time_to_first_step.py [--rounds 2] [--compare DIR] [--gin.KEY=VALUE ...]

--compare DIR times another checkout too (e.g. `git archive REV | tar -x -C DIR`), its rounds
alternating with this one's, and prints both.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LOOP = re.compile(r"compiled and ran the first step in ([\d.]+)s")
_PROGRESS = re.compile(r"^step +\d+/\d+ \|")


def time_run(model_dir: str, cache_dir: str, extra: list[str], root: str = _ROOT) -> tuple[float, float, str]:
  """(seconds from exec to the first-step line, that line's own figure, the run's output)."""
  env = dict(os.environ, FLAN_JAX_COMPILATION_CACHE=cache_dir, PYTHONUNBUFFERED="1")
  cmd = [sys.executable, "-m", "flan_jax.cli", "train", "--gin_file=gin/recipes/quickstart.gin",
         f"--gin.MODEL_DIR={model_dir}", *extra]
  t0 = time.perf_counter()
  proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  lines, elapsed, own = [], None, None
  for line in proc.stdout:
    lines.append(line)
    m = _LOOP.search(line)
    if m:
      own = float(m.group(1))
    if elapsed is None and _PROGRESS.match(line):
      elapsed = time.perf_counter() - t0
      proc.send_signal(signal.SIGTERM)
  proc.wait()
  if elapsed is None:
    raise SystemExit(f"run exited {proc.returncode} before its first step:\n{''.join(lines)}")
  return elapsed, own, "".join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--verbose", action="store_true", help="print each run's output")
  parser.add_argument("--compare", help="another checkout to time in alternating rounds")
  args, extra = parser.parse_known_args(argv)
  roots = {"this checkout": _ROOT, **({args.compare: os.path.abspath(args.compare)} if args.compare else {})}
  times = {name: ([], []) for name in roots}
  for r in range(args.rounds):
    for name, root in roots.items():
      work = tempfile.mkdtemp(prefix="flan_jax_ttfs_")
      try:
        model_dir, cache = os.path.join(work, "run"), os.path.join(work, "jax_cache")
        t1, own1, out1 = time_run(model_dir, cache, extra, root)
        t2, own2, out2 = time_run(model_dir, cache, extra, root)
        if "resumed from" not in out2:
          raise SystemExit(f"run 2 did not resume:\n{out2}")
        if args.verbose:
          print(out1, out2, sep="\n")
        times[name][0].append(t1)
        times[name][1].append(t2)
        print(f"round {r + 1}, {name}: run 1 {t1:.1f} s to first step (loop {own1:.1f} s), "
              f"run 2 (resume) {t2:.1f} s (loop {own2:.1f} s): {t1 / t2:.2f}x", flush=True)
      finally:
        shutil.rmtree(work, ignore_errors=True)
  for name, (firsts, seconds) in times.items():
    t1, t2 = statistics.median(firsts), statistics.median(seconds)
    print(f"{name}: median run 1 {t1:.1f} s, run 2 {t2:.1f} s to first step; run 2 is {t1 / t2:.2f}x faster "
          f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
  main()
