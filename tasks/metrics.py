"""Postprocessors and metrics shared by the task collections (seqio signatures).

A seqio postprocessor is `fn(text, example=None, is_target=False) -> value`; a metric is
`fn(targets, predictions) -> {name: float}` over the postprocessed values.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

# The CoT answer phrasings of the Flan 2022 CoT templates (collections/families.py).
_COT_ANSWER = re.compile(r"(?:So the answer is|the (?:final )?answer is|The answer:)\s*"
                         r"((?:(?!the (?:final )?answer is|The answer:).)*?)\s*\.?\s*$",
                         re.DOTALL | re.IGNORECASE)


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def normalize_answer(text: str) -> str:
  """Lower case, single spaces, no surrounding whitespace or final full stop."""
  return " ".join(text.lower().split()).rstrip(".").strip()


def strip_text(output, example=None, is_target=False) -> str:
  """The postprocessor of the non-CoT formats."""
  del example, is_target
  return _text(output).strip()


def cot_answer(output, example=None, is_target=False) -> str:
  """The final answer of a chain-of-thought output ("... So the answer is X." -> "X").

  An output without the phrase is returned whole (stripped), so it scores as wrong
  unless the model answered directly.
  """
  del example, is_target
  text = _text(output).strip()
  match = _COT_ANSWER.search(text)
  return match.group(1) if match else text


def exact_match(targets: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
  """Percentage of predictions equal to their target after `normalize_answer`."""
  if len(targets) != len(predictions):
    raise ValueError(f"exact_match got {len(targets)} targets but {len(predictions)} predictions")
  if not targets:
    return {"exact_match": 0.0}
  hits = sum(normalize_answer(t) == normalize_answer(p) for t, p in zip(targets, predictions))
  return {"exact_match": 100.0 * hits / len(targets)}


def accuracy(targets: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
  """Classification accuracy over the answer options (exact match, named `accuracy`)."""
  return {"accuracy": exact_match(targets, predictions)["exact_match"]}


METRICS: dict[str, Callable] = {"exact_match": exact_match, "accuracy": accuracy}


def resolve_metric(metric) -> Callable:
  """A metric function from a callable or one of the names in `METRICS`."""
  if callable(metric):
    return metric
  if metric in METRICS:
    return METRICS[metric]
  raise ValueError(f"unknown metric {metric!r}; use a callable (targets, predictions) -> dict "
                   f"or one of {sorted(METRICS)}")


def metric_name(metric) -> str:
  return metric if isinstance(metric, str) else getattr(metric, "__name__", repr(metric))
