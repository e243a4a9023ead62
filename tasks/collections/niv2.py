"""Registers the NIv2 collection (natural-instructions tasks minus MMLU overlap).

Task ids come from `catalogue.niv2_listing` (bundled list, `<data_dir>/niv2/niv2_tasks.txt`
or a checkout); data from `<data_dir>/natural-instructions/tasks/<task_id>.json`, or the
file the repository names with "-" or a "." where the id has "_" or stops
(`readers.niv2_task_file`); the natural-instructions layout: Definition, Positive
Examples, Instances. The last `readers.NIV2_VALIDATION` (10) instances of a task, at most
a tenth, are validation. Few-shot variants show the definition with the task's positive
examples and their explanations (as many as fit). Registering only lists names; no task
file is opened.
"""
from __future__ import annotations

from flan_jax.tasks.collections import _register
from flan_jax.tasks.collections import catalogue
from flan_jax.tasks.collections import readers

COLLECTION = "niv2"


task_path = catalogue.niv2_task_path


def register(data_dir=None) -> list[str]:
  return _register.register_entries(
      catalogue.entries(COLLECTION, root=data_dir),
      lambda e: readers.NIv2TaskSource(task_path(data_dir, e.dataset), task=e.name))


TASKS = register()
