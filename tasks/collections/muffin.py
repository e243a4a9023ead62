"""Registers the Muffin collection (80 tasks, Flan 2021 + dialog + program synthesis).

Data: `<data_dir>/muffin/<task>/{train,validation}.jsonl` with the canonical fields of
its template family (see families.FIELDS), as written by `flan-jax data prepare muffin`.
Call `register(data_dir=...)` to point the tasks at another data dir.
"""
from __future__ import annotations

from flan_jax.tasks.collections import _register

COLLECTION = "muffin"


def register(data_dir=None) -> list[str]:
  """Registers the 80 Muffin tasks and the dialog inversions; returns the Muffin task names
  (the inversions' are in `DIALOG_INVERSION_TASKS`)."""
  DIALOG_INVERSION_TASKS[:] = _register.register_dialog_inversions(data_dir)
  return _register.register_file_collection(COLLECTION, data_dir)


DIALOG_INVERSION_TASKS: list[str] = []


TASKS = register()
