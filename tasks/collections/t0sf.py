"""Registers the T0-SF collection (193 P3 prompt-tasks outside Flan 2021).

Data: `<data_dir>/t0sf/<task>/{train,validation}.jsonl` with the canonical fields of
its template family (see families.FIELDS), as written by `flan-jax data prepare t0sf`.
Call `register(data_dir=...)` to point the tasks at another data dir.
"""
from __future__ import annotations

from flan_jax.tasks.collections import _register
from flan_jax.tasks.collections import catalogue
from flan_jax.tasks.collections import readers

COLLECTION = "t0sf"


def register(data_dir=None) -> list[str]:
  root = catalogue.data_dir(data_dir)
  return _register.register_entries(
      catalogue.entries(COLLECTION),
      lambda e: readers.TaskFilesSource(root, COLLECTION, e.name, e.splits))


TASKS = register()
