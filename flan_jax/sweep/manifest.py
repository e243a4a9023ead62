"""ROOT/sweep.json: the runs of a sweep (and where they were submitted), what `status` and
`report` read; text files read and written locally or through tf.io.gfile (gs://)."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Mapping, Sequence

from flan_jax.sweep.grid import Run, SweepGrid

MANIFEST = "sweep.json"


def write_text(path: str, text: str) -> None:
  if "://" in path:
    import tensorflow as tf
    with tf.io.gfile.GFile(path, "w") as f:
      f.write(text)
    return
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "w") as f:
    f.write(text)


def read_text(path: str) -> str | None:
  """The file's text, or None if it does not exist (gs:// paths through tf.io.gfile)."""
  if "://" in path:
    import tensorflow as tf
    if not tf.io.gfile.exists(path):
      return None
    with tf.io.gfile.GFile(path) as f:
      return f.read()
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return f.read()


def write_manifest(root: str, grid: SweepGrid, runs: Sequence[Run], timings: Mapping | None = None,
                   submitted: Mapping | None = None) -> str:
  """ROOT/sweep.json; `submitted`: {'target', 'launch_args', 'runs': {name: time}} of a cluster sweep."""
  path = root.rstrip("/") + "/" + MANIFEST
  body = {"grid": dataclasses.asdict(grid), "runs": [dataclasses.asdict(r) for r in runs],
          "timings": dict(timings or {})}
  if submitted:
    body["submitted"] = dict(submitted)
  write_text(path, json.dumps(body, indent=1, default=list))
  return path


def manifest_body(root: str) -> dict:
  path = root.rstrip("/") + "/" + MANIFEST
  text = read_text(path)
  if text is None:
    raise FileNotFoundError(f"{path} not found: give --grid=G (the sweep's gin file) or run "
                            f"`flan-jax sweep run --grid=G --root={root}` first")
  return json.loads(text)


def read_manifest(root: str) -> tuple[dict, list[Run], dict]:
  body = manifest_body(root)
  runs = [Run(**{**r, "bindings": tuple(r["bindings"])}) for r in body["runs"]]
  return body["grid"], runs, body.get("timings", {})
