"""Registers the T0-SF collection (193 P3 prompt-tasks outside Flan 2021).

Data: `<data_dir>/t0sf/<task>/{train,validation}.jsonl` with the canonical fields of
its template family (see families.FIELDS), as written by `flan-jax data prepare t0sf`.
Call `register(data_dir=...)` to point the tasks at another data dir.
"""
from __future__ import annotations

from flan_jax.tasks.collections import _register
from flan_jax.tasks.collections import readers

COLLECTION = "t0sf"


def register(data_dir=None) -> list[str]:
  # Read as FLAN's T0 tasks read P3 (question / answer / options, line breaks flattened).
  return _register.register_file_collection(COLLECTION, data_dir, files=readers.P3TaskFilesSource)


TASKS = register()
