"""Answers and metrics: the one module the task collections and the evaluator share.

A seqio postprocessor is `fn(text, example=None, is_target=False) -> value`; a metric is
`fn(targets, predictions) -> {name: percent}` over the postprocessed values. The
evaluator (`flan_jax.evaluation.evaluator`) extracts answers with the same `extract_answer` that the
CoT postprocessor uses, and scores them with the same metric functions.

Answer extraction (`extract_answer`), applied to model outputs and to targets alike:
  1. the text after the last answer phrase ("So the answer is X.", "the answer is X",
     "Answer: X"), up to the end of its line and a final full stop;
  2. without a phrase: the last non-empty line (`fallback="last_line"`), the whole text
     (`"all"`) or "" (`"empty"`);
  3. with `numeric=True` (answer kind "number": MGSM, arithmetic): the last number of that
     text, or of the whole output when the text has none;
  4. with `options`: letters "(B)", "B", "B)" map to the option text, and an answer that
     names exactly one option maps to it.

Evaluation tasks record how they are scored when they are registered (`record_eval_task`,
called by `tasks/eval_suites.py`): their suite, their column of the Flan-PaLM paper's
table and their answer kind. Columns and the normalised average follow the Flan-PaLM
paper (Chung et al. 2022, "normalized average"): each column normalised as
`100 * (score - random) / (100 - random)` and averaged over the evaluated columns.
Random baselines we chose: MMLU 25 (four options); BBH and any other multiple-choice task:
the mean over its examples of 100 / number of options (0 for free-form tasks like word
sorting); TyDiQA and MGSM 0 (free-form answers).
"""
from __future__ import annotations

import collections
import dataclasses
import re
import string
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from flan_jax.tasks import templates

# ----------------------------------------------------------------------------------------
# Text and normalisation.

# "So the answer is X", "Therefore, the final answer is X", "The answer: X", "Answer: X".
_ANSWER_PHRASE = re.compile(r"(?:the (?:final |correct )?answer is|answer\s*:)\s*:?\s*",
                            re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_LETTER = re.compile(r"^\(?([A-Za-z])\)?(?:[\s.:)]|$)")


def as_text(value) -> str:
  """A seqio string feature (bytes) or any value as str."""
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def normalize(text: str) -> str:
  """Lower case, single spaces, no surrounding quotes/brackets or final punctuation."""
  text = " ".join(as_text(text).lower().split())
  return text.strip().strip("\"'`").rstrip(".!?;,").strip()


def normalize_number(text: str) -> str:
  """"1,000" -> "1000", "3.50" -> "3.5", "4.0" -> "4"; other text unchanged."""
  t = text.replace(",", "").strip()
  try:
    value = float(t)
  except ValueError:
    return text
  return str(int(value)) if value == int(value) else repr(value)


def last_number(text: str) -> str | None:
  found = _NUMBER.findall(as_text(text))
  return normalize_number(found[-1]) if found else None


def parse_options(prompt: str) -> list[str] | None:
  """The options of the last "OPTIONS:\\n- a\\n- b" block of a FLAN prompt (the query's,
  after any few-shot exemplars), or None."""
  prompt = as_text(prompt)
  at = prompt.rfind(templates.OPTIONS_HEADER)
  if at < 0:
    return None
  options = []
  for line in prompt[at + len(templates.OPTIONS_HEADER):].splitlines()[1:]:
    if not line.startswith("- "):
      break
    options.append(line[2:].strip())
  return options or None


def match_option(answer: str, options: Sequence[str]) -> str | None:
  """The option an answer designates: equal text, a letter "(B)"/"B"/"B) ...", or the one
  option it contains; None if none or ambiguous."""
  norm = normalize(answer)
  normed = [normalize(o) for o in options]
  if norm in normed:
    return options[normed.index(norm)]
  letter = _LETTER.match(answer.strip())
  if letter:
    i = ord(letter.group(1).upper()) - ord("A")
    if 0 <= i < len(options):
      return options[i]
  inside = [o for o, n in zip(options, normed) if n and re.search(rf"(?<!\w){re.escape(n)}(?!\w)", norm)]
  return inside[0] if len(inside) == 1 else None


def extract_answer(output: str, *, options: Sequence[str] | None = None, numeric: bool = False,
                   fallback: str = "last_line") -> str:
  """The final answer of a (chain-of-thought) output; see the module docstring."""
  text = as_text(output).strip()
  phrases = list(_ANSWER_PHRASE.finditer(text))
  if phrases:
    answer = text[phrases[-1].end():].split("\n", 1)[0].strip()
    answer = re.sub(r"\.\s*$", "", answer).strip()
  elif fallback == "last_line":
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    answer = lines[-1] if lines else ""
  elif fallback == "all":
    answer = text
  elif fallback == "empty":
    answer = ""
  else:
    raise ValueError(f"extract_answer: fallback={fallback!r}; use 'last_line', 'all' or 'empty'")
  if numeric:
    number = last_number(answer)
    if number is None and not phrases:
      number = last_number(text)
    return number if number is not None else answer
  if options:
    chosen = match_option(answer, options)
    if chosen is not None:
      return chosen
  return answer


# ----------------------------------------------------------------------------------------
# Postprocessors (seqio signature).


def strip_text(output, example=None, is_target=False) -> str:
  """The postprocessor of the non-CoT formats."""
  del example, is_target
  return as_text(output).strip()


def cot_answer(output, example=None, is_target=False) -> str:
  """The final answer of a chain-of-thought output ("... So the answer is X." -> "X").

  An output without an answer phrase is returned whole (stripped), so it scores as wrong
  unless the model answered directly.
  """
  del example, is_target
  return extract_answer(output, fallback="all")


# ----------------------------------------------------------------------------------------
# Metrics: lists of strings in, {name: percent} out.


def _check_lengths(name: str, targets: Sequence, predictions: Sequence) -> None:
  if len(targets) != len(predictions):
    raise ValueError(f"{name}: {len(targets)} targets but {len(predictions)} predictions")


def exact_match(targets: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
  """Percentage of predictions equal to their target after `normalize`."""
  _check_lengths("exact_match", targets, predictions)
  hits = sum(normalize(t) == normalize(p) for t, p in zip(targets, predictions))
  return {"exact_match": 100.0 * hits / len(targets) if targets else 0.0}


def accuracy(targets: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
  """Classification accuracy over the answer options (exact match, named `accuracy`)."""
  return {"accuracy": exact_match(targets, predictions)["exact_match"]}


def _overlap_f1(gold: list[str], pred: list[str]) -> float:
  same = sum((collections.Counter(gold) & collections.Counter(pred)).values())
  return 0.0 if not same else 2 * same / (len(gold) + len(pred))


def token_f1(targets: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
  """Mean token-overlap F1 after `normalize` (no article or punctuation stripping), in
  percent: the metric of FLAN's generation tasks (summaries, translations, inversions)."""
  _check_lengths("token_f1", targets, predictions)
  scores = [_overlap_f1(normalize(t).split(), normalize(p).split()) for t, p in zip(targets, predictions)]
  return {"token_f1": 100.0 * sum(scores) / max(len(scores), 1)}


def _squad_normalize(text: str) -> str:
  """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
  text = "".join(ch for ch in as_text(text).lower() if ch not in set(string.punctuation))
  text = re.sub(r"\b(a|an|the)\b", " ", text)
  return " ".join(text.split())


def _squad_f1(gold: str, pred: str) -> float:
  g, p = _squad_normalize(gold).split(), _squad_normalize(pred).split()
  return float(g == p) if not g or not p else _overlap_f1(g, p)


def squad_em_f1(targets: Sequence[str | Sequence[str]], predictions: Sequence[str]) -> dict[str, float]:
  """SQuAD/TyDiQA-GoldP exact match and token F1 (percent), max over each row's gold answers."""
  _check_lengths("squad_em_f1", targets, predictions)
  if not targets:
    return {"em": 0.0, "f1": 0.0}
  em = f1 = 0.0
  for golds, pred in zip(targets, predictions):
    golds = [golds] if isinstance(golds, (str, bytes)) else list(golds)
    em += max(float(_squad_normalize(g) == _squad_normalize(pred)) for g in golds)
    f1 += max(_squad_f1(g, pred) for g in golds)
  return {"em": 100.0 * em / len(targets), "f1": 100.0 * f1 / len(targets)}


METRICS: dict[str, Callable] = {"exact_match": exact_match, "accuracy": accuracy, "token_f1": token_f1,
                                "squad_em_f1": squad_em_f1}


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


# ----------------------------------------------------------------------------------------
# Self-consistency (Wang et al. 2022): a majority vote over sampled CoT answers.


def majority_vote(answers: Sequence[str]) -> tuple[str, int]:
  """(most frequent answer, its votes) by normalised text; empty answers vote only when all
  are empty; ties go to the answer that appeared first. Returns the first spelling seen."""
  keyed = [(normalize(a), a) for a in answers]
  voting = [(k, a) for k, a in keyed if k] or keyed
  if not voting:
    return "", 0
  counts = collections.Counter(k for k, _ in voting)
  first = {}
  for i, (k, a) in enumerate(voting):
    first.setdefault(k, (i, a))
  best = max(counts, key=lambda k: (counts[k], -first[k][0]))
  return first[best][1], counts[best]


def self_consistency(samples: Sequence[str], *, options: Sequence[str] | None = None,
                     numeric: bool = False) -> tuple[str, int]:
  """The majority answer over k sampled CoT outputs (see majority_vote)."""
  return majority_vote([extract_answer(s, options=options, numeric=numeric) for s in samples])


# ----------------------------------------------------------------------------------------
# Normalised scores (the paper's "Norm. avg").


def normalized_score(score: float, random_baseline: float) -> float:
  """100 * (score - random) / (100 - random): 0 = chance, 100 = perfect."""
  if random_baseline >= 100:
    raise ValueError(f"random baseline {random_baseline} must be below 100")
  return 100.0 * (score - random_baseline) / (100.0 - random_baseline)


def normalized_average(column_scores: Mapping[str, float], baselines: Mapping[str, float]) -> float:
  """Mean of the columns' normalised scores: over the paper's columns (`PAPER_COLUMNS`)
  when any is among them, else over all."""
  if not column_scores:
    raise ValueError("normalized_average of no columns")
  if any(c in PAPER_COLUMNS for c in column_scores):
    column_scores = {c: v for c, v in column_scores.items() if c in PAPER_COLUMNS}
  return float(np.mean([normalized_score(s, baselines.get(c, 0.0)) for c, s in column_scores.items()]))


# ----------------------------------------------------------------------------------------
# How an evaluation task is scored, recorded when it is registered.

SUITES = ("MMLU", "BBH", "TyDiQA", "MGSM", "BIG-bench BBH", "Held-out")
# The paper's six columns (Chung et al. 2022, Table 3 and Figure 4); the normalised average
# is taken over these when any is evaluated.
PAPER_COLUMNS = ("MMLU Direct", "MMLU CoT", "BBH Direct", "BBH CoT", "TyDiQA", "MGSM")
COLUMNS = (*PAPER_COLUMNS, "MGSM English", "BIG-bench BBH Direct", "BIG-bench zero-shot", "Held-out Direct",
           "Held-out CoT")
SUITE_BASELINES = {"MMLU": 25.0, "TyDiQA": 0.0, "MGSM": 0.0}  # others: from each task's options
# text: exact match after extraction (mapped onto the options when the example has some);
# number: the last number, compared as a number; span: SQuAD exact match and F1 against
# every gold answer (TyDiQA GoldP).
ANSWER_KINDS = ("text", "number", "span")
# How answers are read (tasks/scoring.py): each suite's reference rule, or flan_jax's lenient one.
SCORERS = ("bbh", "mmlu_letter", "mmlu_cot", "tydiqa", "mgsm", "lenient")
# FLAN catalogue categories whose answers are numbers (held-out tasks outside the suites).
NUMERIC_CATEGORIES = frozenset({"arithmetic", "Grade School Math"})


@dataclasses.dataclass(frozen=True)
class EvalTaskInfo:
  """Where an evaluation task's score goes and how its answers are read.

  scorer: the benchmark's own rule (`tasks/scoring.py`); answer_phrases and stops are its
  per-task settings (MGSM: the language's "The answer is" and its question word).
  weighted: the column averages its tasks weighted by their number of examples (MMLU, as
  Hendrycks' code does); otherwise each task counts once.
  """
  suite: str
  column: str
  answer: str = "text"
  cot: bool = False
  scorer: str = "lenient"
  answer_phrases: tuple[str, ...] = ()
  stops: tuple[str, ...] = ()
  weighted: bool = False

  def __post_init__(self):
    if self.answer not in ANSWER_KINDS:
      raise ValueError(f"answer kind {self.answer!r}; use one of {ANSWER_KINDS}")
    if self.scorer not in SCORERS:
      raise ValueError(f"scorer {self.scorer!r}; use one of {SCORERS}")

  @property
  def numeric(self) -> bool:
    return self.answer == "number"


def column_for(suite: str, cot: bool) -> str:
  """The paper's column of a suite: TyDiQA and MGSM have one; the others Direct and CoT."""
  if suite not in SUITES:
    raise ValueError(f"suite {suite!r}; use one of {SUITES}")
  return suite if suite in ("TyDiQA", "MGSM") else f"{suite} {'CoT' if cot else 'Direct'}"


_EVAL_TASKS: dict[str, EvalTaskInfo] = {}


def record_eval_task(name: str, *, suite: str, cot: bool = False, answer: str = "text",
                     column: str | None = None, **how) -> EvalTaskInfo:
  """Records (replacing) how the evaluation task `name` is scored; returns the record.
  `column` defaults to the suite's (`column_for`); `how`: EvalTaskInfo's scoring fields."""
  info = EvalTaskInfo(suite=suite, column=column or column_for(suite, cot), answer=answer, cot=cot,
                      **{k: tuple(v) if isinstance(v, list) else v for k, v in how.items()})
  _EVAL_TASKS[name] = info
  return info


def recorded_eval_task(name: str) -> EvalTaskInfo | None:
  """The record of a task registered by an evaluation suite, or None."""
  return _EVAL_TASKS.get(name)


def heldout_task_info(*, cot: bool, category: str | None) -> EvalTaskInfo:
  """A task outside the suites (e.g. a held-out FLAN family): "Held-out Direct/CoT",
  numeric answers when its catalogue category is one of `NUMERIC_CATEGORIES`."""
  answer = "number" if category in NUMERIC_CATEGORIES else "text"
  return EvalTaskInfo(suite="Held-out", column=column_for("Held-out", cot), answer=answer, cot=cot)
