"""Registers the CoT collection (9 chain-of-thought datasets) and its input inversions.

Data: `<data_dir>/cot/<dataset>_train.tsv` (question, answer, rationale; the published
Flan CoT TSVs). The last `readers.COT_VALIDATION` rows of each file are held out as
validation. Formats: zero- and few-shot CoT only (every example carries its rationale,
as in FLAN's CoT submixture), with each dataset's own templates. `cot_<dataset>_inversion`
(FLAN's "CoT-II") asks for the question given the rationale and answer.
"""
from __future__ import annotations

from flan_jax.tasks.collections import _register
from flan_jax.tasks.collections import catalogue
from flan_jax.tasks.collections import readers

COLLECTION = "cot"


def tsv_path(root, entry: catalogue.Entry):
  return catalogue.data_dir(root) / "cot" / f"{entry.dataset}_train.tsv"


def register(data_dir=None) -> list[str]:
  """Registers the nine CoT tasks and their inversions; returns the CoT task names (the
  inversions' are in `INVERSION_TASKS`)."""
  entries = catalogue.entries(COLLECTION)

  def source(e):
    return readers.CotTsvSource(tsv_path(data_dir, e), task=e.name)

  INVERSION_TASKS[:] = _register.register_cot_inversions(entries, source)
  return _register.register_entries(entries, source)


INVERSION_TASKS: list[str] = []
TASKS = register()
