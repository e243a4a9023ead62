"""`flan-jax data prepare COLLECTION --data_dir=D`: fetch and cache a collection's data.

Run on a machine with network access; training then works offline from D.

  niv2    git clone of allenai/natural-instructions into D/natural-instructions, and the
          task listing D/niv2/niv2_tasks.txt the catalogue reads
  muffin, t0sf
          TFDS `download_and_prepare` into D/tfds for the datasets TFDS has (the
          canonical D/<collection>/<task>/<split>.jsonl files are then written by
          dataset-specific converters, which are not written yet: reported as missing)
  cot     the CoT TSVs are expected as D/cot/<dataset>_train.tsv (copy them from the
          FLAN repository's release); reported as missing when absent

Every item that could not be fetched is printed; the exit status is 1 if any failed.
Nothing here raises on a network failure.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import subprocess

from flan_jax.tasks.collections import catalogue

NIV2_REPO = "https://github.com/allenai/natural-instructions.git"


def _niv2(root: pathlib.Path, timeout: float) -> list[str]:
  checkout = root / "natural-instructions"
  if not (checkout / "tasks").is_dir():
    try:
      proc = subprocess.run(["git", "clone", "--depth", "1", NIV2_REPO, str(checkout)],
                            capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
      return [f"niv2: git clone {NIV2_REPO} failed: {e}"]
    if proc.returncode != 0:
      return [f"niv2: git clone {NIV2_REPO} failed: {proc.stderr.strip()[-300:]}"]
  listing = catalogue.niv2_listing(root) or []
  (root / "niv2").mkdir(parents=True, exist_ok=True)
  (root / "niv2" / "niv2_tasks.txt").write_text("\n".join(listing) + "\n")
  print(f"niv2: {sum(map(catalogue.niv2_keep, listing))} tasks kept of {len(listing)}")
  return []


def _tfds(collection: str, root: pathlib.Path) -> list[str]:
  failures = []
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    return [f"{collection}: tensorflow_datasets is not installed ({e})"]
  for e in catalogue.entries(collection):
    target = root / collection / e.name
    if (target / "train.jsonl").is_file():
      continue
    if not e.tfds_name:
      failures.append(f"{e.name}: no TFDS source for dataset {e.dataset!r}")
      continue
    try:
      tfds.builder(e.tfds_name, data_dir=str(root / "tfds")).download_and_prepare()
    except Exception as err:  # pylint: disable=broad-except
      failures.append(f"{e.name}: TFDS {e.tfds_name} failed: {type(err).__name__}: "
                      f"{str(err)[:200]}")
      continue
    failures.append(f"{e.name}: TFDS {e.tfds_name} prepared, but no converter to "
                    f"{target}/<split>.jsonl yet")
  return failures


def _cot(root: pathlib.Path) -> list[str]:
  return [f"{e.name}: missing {root / 'cot' / (e.dataset + '_train.tsv')}"
          for e in catalogue.entries("cot")
          if not (root / "cot" / f"{e.dataset}_train.tsv").is_file()]


def prepare(collection: str, data_dir=None, *, timeout: float = 600) -> list[str]:
  """Fetches one collection (or "all"); returns what could not be fetched."""
  root = catalogue.data_dir(data_dir)
  root.mkdir(parents=True, exist_ok=True)
  names = list(catalogue.COLLECTIONS) if collection == "all" else [collection]
  failures = []
  for c in names:
    if c == "niv2":
      failures += _niv2(root, timeout)
    elif c == "cot":
      failures += _cot(root)
    elif c in ("muffin", "t0sf"):
      failures += _tfds(c, root)
    else:
      raise ValueError(f"unknown collection {c!r}; use one of {list(catalogue.COLLECTIONS)} "
                       "or all")
  return failures


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="flan-jax data")
  sub = p.add_subparsers(dest="command", required=True)
  prep = sub.add_parser("prepare", help="fetch and cache a collection")
  prep.add_argument("collection", choices=list(catalogue.COLLECTIONS) + ["all"])
  prep.add_argument("--data_dir", default=None)
  prep.add_argument("--timeout", type=float, default=600, help="seconds per download")
  args = p.parse_args(argv)
  failures = prepare(args.collection, args.data_dir, timeout=args.timeout)
  for f in failures:
    print(f"could not get: {f}")
  print(f"{len(failures)} item(s) missing under {catalogue.data_dir(args.data_dir)}")
  return 1 if failures else 0
