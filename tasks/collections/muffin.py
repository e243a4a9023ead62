"""Registers the Muffin collection (80 tasks, Flan 2021 + dialog + program synthesis).

Data: `<data_dir>/muffin/<task>/{train,validation}.jsonl` with the canonical fields of
its template family (see families.FIELDS), as written by `flan-jax data prepare muffin`.
Call `register(data_dir=...)` to point the tasks at another data dir.
"""
from __future__ import annotations

from flan_jax.tasks.collections import _register
from flan_jax.tasks.collections import catalogue
from flan_jax.tasks.collections import readers

COLLECTION = "muffin"


def register(data_dir=None) -> list[str]:
  root = catalogue.data_dir(data_dir)
  return _register.register_entries(
      catalogue.entries(COLLECTION),
      lambda e: readers.TaskFilesSource(root, COLLECTION, e.name, e.splits))


TASKS = register()
