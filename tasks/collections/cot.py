"""Registers the CoT collection (9 chain-of-thought datasets).

Data: `<data_dir>/cot/<dataset>_train.tsv` (question, answer, rationale; the published
Flan CoT TSVs). Every 20th row is held out as validation. Formats: zero-/few-shot with and
without options, and zero-/few-shot CoT.
"""
from __future__ import annotations

from flan_jax.tasks.collections import _register
from flan_jax.tasks.collections import catalogue
from flan_jax.tasks.collections import readers

COLLECTION = "cot"


def tsv_path(root, entry: catalogue.Entry):
  return catalogue.data_dir(root) / "cot" / f"{entry.dataset}_train.tsv"


def register(data_dir=None) -> list[str]:
  return _register.register_entries(
      catalogue.entries(COLLECTION),
      lambda e: readers.CotTsvSource(tsv_path(data_dir, e), task=e.name))


TASKS = register()
