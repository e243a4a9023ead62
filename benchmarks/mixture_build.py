"""Builds the full Flan 2022 mixture over small fixtures and draws packed examples.

  python benchmarks/mixture_build.py [--examples 1000] [--mixture flan2022_submix]
  python benchmarks/mixture_build.py --cache [--workers 2] [--shards 1]

Writes fixture data for every catalogued task into a temporary data dir (NIv2: a task file
for each id of the bundled natural-instructions listing), imports
`flan_jax.tasks.mixtures`, and draws the first packed examples through seqio's
EncDecFeatureConverter. Prints seconds per stage and peak RSS (resource.getrusage).
Targets: under 60 s and under 4 GB.

With --cache: `flan-jax data cache MIXTURE` over the same fixtures (build throughput in
examples/s, serial and with --workers processes), then the time to the first packed batch
of `flan_jax.training.data.BatchIterator` (what `flan-jax train` reads) without and with
USE_CACHED_TASKS, each in a fresh process, and the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import tempfile
import time

ROWS = {"classify": {"text": "a short text {i}", "answer": "yes {i}", "options": ["yes {i}", "no"]},
        "nli": {"premise": "p {i}", "hypothesis": "h {i}", "answer": "yes", "options": ["yes", "no"]},
        "rcqa": {"context": "context {i}", "question": "q {i}?", "answer": "a {i}"},
        "cbqa": {"question": "question {i}?", "answer": "a {i}"},
        "mcqa": {"question": "question {i}?", "answer": "b {i}", "options": ["a", "b {i}"]},
        "summarize": {"text": "long text {i}", "answer": "short {i}"},
        "translate": {"text": "hello {i}", "source_lang": "English", "target_lang": "French",
                      "answer": "bonjour {i}"},
        "generate": {"text": "input {i}", "answer": "output {i}"},
        "dialog": {"turns": ["hi {i}", "hello", "how is it going {i}?"], "answer": "fine {i}"},
        # T0-SF files hold rendered P3 prompts (prepare.p3_row), line breaks included.
        "p3": {"inputs": "P3 prompt {i}\n\nQuestion {i}?", "targets": "b {i}", "options": ["a", "b {i}"]}}


def _fill(row, i):
  return {k: (v.format(i=i) if isinstance(v, str) else [o.format(i=i) for o in v])
          for k, v in row.items()}


def write_fixtures(root: pathlib.Path, n_train=20, n_val=2) -> None:
  from flan_jax.tasks.collections import catalogue
  niv2_ids = catalogue.niv2_listing()  # the bundled natural-instructions task ids
  (root / "niv2").mkdir(parents=True)
  (root / "niv2" / "niv2_tasks.txt").write_text("\n".join(niv2_ids) + "\n")
  for e in catalogue.entries("muffin") + catalogue.entries("t0sf"):
    d = root / e.collection / e.name
    d.mkdir(parents=True)
    for split, n in (("train", n_train), ("validation", n_val)):
      (d / f"{split}.jsonl").write_text(
          "".join(json.dumps(_fill(ROWS["p3" if e.collection == "t0sf" else e.family], i)) + "\n"
                  for i in range(n)))
  (root / "cot").mkdir()
  for e in catalogue.entries("cot"):
    (root / "cot" / f"{e.dataset}_train.tsv").write_text("".join(
        f"What is {i} + 1?\t{i + 1}\t{i} plus one is {i + 1}.\n" for i in range(40)))
  tasks = root / "natural-instructions" / "tasks"
  tasks.mkdir(parents=True)
  task = {"Definition": ["Repeat the input."],
          "Positive Examples": [{"input": "ab", "output": "ab", "explanation": "Same text."},
                                {"input": "c d", "output": "c d", "explanation": "Copied."}],
          "Instances": [{"id": str(i), "input": f"x{i}", "output": [f"x{i}"]}
                        for i in range(n_train + n_val)]}
  for task_id in niv2_ids:
    (tasks / f"{task_id}.json").write_text(json.dumps(task))


LENGTHS = {"inputs": 512, "targets": 128}


def first_batch(mixture: str, cache_dir: str | None) -> None:
  """Prints the seconds from start-up to the first packed batch (FLAN_JAX_DATA_DIR set)."""
  t0 = time.perf_counter()
  from flan_jax.tasks import lookup  # pylint: disable=g-import-not-at-top
  from flan_jax.training import data
  from flan_jax.tasks import cache_reader
  lookup.import_task_modules(["flan_jax.tasks.mixtures"])
  t1 = time.perf_counter()
  with cache_reader.using_cache_dirs([cache_dir] if cache_dir else []):
    it = data.BatchIterator(mixture, LENGTHS, 32, process_index=0, process_count=1, use_cached=bool(cache_dir))
    next(it)
  t2 = time.perf_counter()
  print(json.dumps({"import": t1 - t0, "first_batch": t2 - t1}))


def _in_fresh_process(*argv, env) -> dict:
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  out = subprocess.run([sys.executable, __file__, *argv], env=env, capture_output=True, text=True, check=False)
  if out.returncode:
    raise SystemExit(out.stderr[-3000:])
  return json.loads(out.stdout.strip().splitlines()[-1])


def cache_benchmark(args) -> None:
  import shutil  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(tmp)
    write_fixtures(root / "data")
    env = dict(os.environ, FLAN_JAX_DATA_DIR=str(root / "data"))
    os.environ.update(env)
    from flan_jax.tasks import lookup  # pylint: disable=g-import-not-at-top
    from flan_jax.training import data
    from flan_jax.tasks import cache  # pylint: disable=g-import-not-at-top
    modules = ["flan_jax.tasks.mixtures"]
    lookup.import_task_modules(modules)
    builds = {}
    for workers in sorted({1, args.workers}):
      out = root / f"cache_{workers}"
      t0 = time.perf_counter()
      manifest = cache.build(args.mixture, str(out), lengths=LENGTHS, num_shards=args.shards, workers=workers,
                             modules=modules, say=lambda *a: None)
      seconds = time.perf_counter() - t0
      n = sum(manifest["examples"].values())
      builds[workers] = (n, seconds, str(out))
      print(f"cache build {args.mixture}: {len(manifest['members'])} members, {n} examples, {workers} worker(s): "
            f"{seconds:.1f} s, {n / seconds:.0f} examples/s")
    if len(builds) > 1:
      print(f"parallel build speed-up with {args.workers} workers: {builds[1][1] / builds[args.workers][1]:.2f}x")
    cache_dir = builds[max(builds)][2]
    for w, (_, _, d) in builds.items():
      if d != cache_dir:
        shutil.rmtree(d)
    plain = _in_fresh_process("--first_batch", args.mixture, env=env)
    cached = _in_fresh_process("--first_batch", args.mixture, "--cache_dir", cache_dir, env=env)
    print(f"time to first batch ({args.mixture}, batch 32, lengths {LENGTHS}, after imports): "
          f"without cache {plain['first_batch']:.1f} s, with cache {cached['first_batch']:.1f} s "
          f"({plain['first_batch'] / cached['first_batch']:.1f}x); imports {plain['import']:.1f} / "
          f"{cached['import']:.1f} s")


def main() -> None:
  p = argparse.ArgumentParser()
  p.add_argument("--examples", type=int, default=1000)
  p.add_argument("--mixture", default="flan2022_submix")
  p.add_argument("--cache", action="store_true", help="benchmark `flan-jax data cache` and cached first batches")
  p.add_argument("--workers", type=int, default=2, help="--cache: parallel build with this many processes")
  p.add_argument("--shards", type=int, default=1, help="--cache: shards per member")
  p.add_argument("--first_batch", metavar="MIXTURE", help=argparse.SUPPRESS)
  p.add_argument("--cache_dir", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.first_batch:
    return first_batch(args.first_batch, args.cache_dir)
  if args.cache:
    return cache_benchmark(args)
  t0 = time.perf_counter()
  with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(tmp)
    write_fixtures(root)
    os.environ["FLAN_JAX_DATA_DIR"] = str(root)
    t1 = time.perf_counter()
    import seqio  # pylint: disable=g-import-not-at-top
    from flan_jax.tasks import mixtures  # pylint: disable=g-import-not-at-top
    t2 = time.perf_counter()
    ds = seqio.get_dataset(
        args.mixture, task_feature_lengths={"inputs": 512, "targets": 128},
        dataset_split="train", shuffle=True, seed=0,
        feature_converter=seqio.EncDecFeatureConverter(pack=True))
    t3 = time.perf_counter()
    n = sum(1 for _ in ds.take(args.examples).as_numpy_iterator())
    t4 = time.perf_counter()
  peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
  from flan_jax.tasks import api  # pylint: disable=g-import-not-at-top
  print(f"mixture {args.mixture}: {mixtures.TASK_COUNTS.get(args.mixture)} tasks, "
        f"{len(api.sampled_mixture_tasks(args.mixture))} format variants")
  print(f"fixtures {t1 - t0:.1f} s | import+register {t2 - t1:.1f} s | build {t3 - t2:.1f} s"
        f" | first {n} packed examples {t4 - t3:.1f} s | total {t4 - t0:.1f} s")
  print(f"peak RSS {peak_gb:.2f} GB")


if __name__ == "__main__":
  main()
