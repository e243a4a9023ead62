"""`flan-jax data cache` on its two engines: local processes against Apache Beam's DirectRunner.

Caches the 28 embedded variants (`flan_jax_embedded`, every FLAN format of the seven embedded
families) at TASK_FEATURE_LENGTHS 512/128, once per engine, each build a fresh
`flan-jax data cache` process into an empty directory; prints the seconds and the peak RSS
(getrusage of the child) of each, the ratios Beam / local, and whether the two caches are the
same file for file.

    python benchmarks/cache_engines.py [--workers 2] [--shards 4] [--keep DIR]

The local command runs `--workers` processes; Beam runs the same work items on its in-process
FnApiRunner with `--direct_num_workers` equal to it (multi-processing mode), so both use the
same cores. Peak RSS is that of the whole process tree (the command and its workers), sampled.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def _tree_rss(root_pid: int) -> int:
  """Resident bytes of a process and all its descendants now (from /proc)."""
  parents, rss = {}, {}
  for d in pathlib.Path("/proc").iterdir():
    if not d.name.isdigit():
      continue
    try:
      fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
      parents[int(d.name)] = int(fields[1])
      rss[int(d.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
      continue
  tree, frontier = {root_pid}, [root_pid]
  while frontier:
    kids = [p for p, pp in parents.items() if pp in frontier and p not in tree]
    tree.update(kids)
    frontier = kids
  return sum(rss.get(p, 0) for p in tree)


def run(out: pathlib.Path, engine: str, workers: int, shards: int) -> tuple[float, float]:
  """(seconds, peak RSS of the whole process tree in GiB, sampled every 0.2 s) of one
  `flan-jax data cache` process."""
  argv = [sys.executable, "-m", "flan_jax.cli", "data", "cache", "flan_jax_embedded", f"--out={out}",
          "--inputs_length=512", "--targets_length=128", f"--shards={shards}"]
  if engine == "local":
    argv.append(f"--workers={workers}")
  else:
    argv += ["--engine=beam", "--runner=DirectRunner", f"--direct_num_workers={workers}",
             "--direct_running_mode=multi_processing" if workers > 1 else "--direct_running_mode=in_memory"]
  start = time.perf_counter()
  proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  peak = 0
  while proc.poll() is None:
    peak = max(peak, _tree_rss(proc.pid))
    time.sleep(0.2)
  seconds = time.perf_counter() - start
  output = proc.stdout.read()
  if proc.returncode != 0:
    raise SystemExit(f"{engine} build failed:\n{output[-3000:]}")
  return seconds, peak / 2**30


def same_files(a: pathlib.Path, b: pathlib.Path) -> bool:
  files = lambda root: {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
  return files(a) == files(b)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--shards", type=int, default=4)
  parser.add_argument("--keep", default=None, help="write the caches here and keep them")
  args = parser.parse_args(argv)
  root = pathlib.Path(args.keep or tempfile.mkdtemp(prefix="cache_engines_"))
  try:
    results = {}
    for engine in ("local", "beam"):
      out = root / engine
      shutil.rmtree(out, ignore_errors=True)
      results[engine] = run(out, engine, args.workers, args.shards)
      print(f"{engine:5s}: {results[engine][0]:6.1f} s, peak RSS {results[engine][1]:.2f} GiB "
            f"(28 variants, {args.shards} shards, {args.workers} workers)", flush=True)
    (ls, lm), (bs, bm) = results["local"], results["beam"]
    print(f"beam / local: time {bs / ls:.2f}x, peak RSS {bm / lm:.2f}x; same files: "
          f"{same_files(root / 'local', root / 'beam')}")
  finally:
    if not args.keep:
      shutil.rmtree(root, ignore_errors=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
