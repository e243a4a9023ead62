"""Builds the full Flan 2022 mixture over small fixtures and draws packed examples.

  python benchmarks/mixture_build.py [--examples 1000] [--mixture flan2022_submix]

Writes fixture data for every catalogued task into a temporary data dir (NIv2: a task file
for each id of the bundled natural-instructions listing), imports
`flan_jax.tasks.mixtures`, and draws the first packed examples through seqio's
EncDecFeatureConverter. Prints seconds per stage and peak RSS (resource.getrusage).
Targets: under 60 s and under 4 GB.
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
        "dialog": {"text": "A: hi {i}\nB: hello", "answer": "A: bye {i}"}}


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
          "".join(json.dumps(_fill(ROWS[e.family], i)) + "\n" for i in range(n)))
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


def main() -> None:
  p = argparse.ArgumentParser()
  p.add_argument("--examples", type=int, default=1000)
  p.add_argument("--mixture", default="flan2022_submix")
  args = p.parse_args()
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
