"""Shared registration of catalogue entries (used by muffin.py, t0sf.py, niv2.py, cot.py)."""
from __future__ import annotations

import collections
from collections.abc import Callable, Iterable

from flan_jax.tasks import api
from flan_jax.tasks.collections import catalogue
from flan_jax.tasks.collections import families

_OPTION_FAMILIES = ("classify", "nli", "mcqa")


def _tokens(text: str) -> list[str]:
  return " ".join(str(text).lower().split()).rstrip(".").split()


def token_f1(targets, predictions) -> dict[str, float]:
  """Mean token-overlap F1 (SQuAD style, no article stripping), in percent."""
  scores = []
  for t, p in zip(targets, predictions):
    t, p = _tokens(t), _tokens(p)
    common = sum((collections.Counter(t) & collections.Counter(p)).values())
    scores.append(0.0 if not common else 2 * common / (len(t) + len(p)))
  return {"token_f1": 100.0 * sum(scores) / max(len(scores), 1)}


def metric_fns(entry: catalogue.Entry) -> list:
  return [token_f1 if m == "token_f1" else m for m in entry.metrics]


def register_entries(entries: Iterable[catalogue.Entry],
                     make_source: Callable[[catalogue.Entry], object], **kwargs) -> list[str]:
  """Registers every FLAN format variant of each entry; returns the seqio task names.
  No data is read: `make_source` must return a lazy source."""
  names = []
  for e in entries:
    names += api.register_flan_task(
        e.name, make_source(e), families.TEMPLATES[e.family], metrics=metric_fns(e),
        collection=f"flan2022_{e.collection}", category=e.category, language=e.language,
        dataset=e.dataset, splits=e.splits,
        options_key="options" if e.family in _OPTION_FAMILIES else None,
        rationale_key="rationale" if e.family == "cot" else None,
        id_key="id" if e.family == "niv2" else None, **kwargs)
  return names


def register_file_collection(collection: str, data_dir=None) -> list[str]:
  """Registers a collection whose tasks read `<data_dir>/<collection>/<task>/<split>.jsonl`."""
  from flan_jax.tasks.collections import readers
  root = catalogue.data_dir(data_dir)
  return register_entries(
      catalogue.entries(collection),
      lambda e: readers.TaskFilesSource(root, collection, e.name, e.splits))
