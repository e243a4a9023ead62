"""The held-out benchmarks' own answer rules: one scorer per benchmark.

Each rule restates, in our code, how the benchmark's reference implementation reads a
model's output (facts taken from those implementations; nothing copied):

| scorer       | reference                                  | rule |
|--------------|--------------------------------------------|------|
| `bbh`        | BBH's prompts as lm-eval 0.4.13 runs them   | read the output up to the first stop (`"\\n\\n"`, a new `"Q:"`); CoT: the text after the *first* "the answer is " to the end of its line, less a final full stop; direct: the whole (stripped) text; exact match with the gold, case-sensitive |
| `mmlu_letter`| hendrycks/test `evaluate_flan.py`          | no generation: the letter A-D whose continuation has the highest likelihood after "Answer:" |
| `mmlu_cot`   | lm-eval's `mmlu_flan_cot_fewshot`          | the text after the first "answer is " to the end of its line, less a final full stop; compared to the gold "(B)" ignoring case and punctuation |
| `tydiqa`     | TyDiQA GoldP / SQuAD                       | the output up to its first newline; SQuAD-normalised exact match (the paper's figure) and F1 |
| `mgsm`       | url-nlp/mgsm exemplars, lm-eval `mgsm_native_cot` | the output up to its first newline or the language's next question word; the number after the first of the language's answer phrases; compared as a number |
| `lenient`    | flan_jax's own                              | `metrics.extract_answer` (last answer phrase, options by letter or text); for tasks outside the paper's suites, never a paper column |

lm-eval's answer regex `(?<=the answer is )(.*)(?=.)` drops the last character of the line
whatever it is; here only a final full stop is dropped, so an output that ends without one
("So the answer is (B)" followed by EOS) keeps its last character.
"""
from __future__ import annotations

import re
import string
from collections.abc import Sequence

from flan_jax.tasks import metrics

SCORERS = metrics.SCORERS
BBH_STOPS = ("\n\n", "Q:")
MMLU_LETTERS = ("A", "B", "C", "D")
_NUMBER = re.compile(r"-?[0-9][0-9.,]*|-?\.[0-9]+")


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
  """The text before the first occurrence of any stop sequence."""
  text = metrics.as_text(text)
  ends = [i for i in (text.find(s) for s in stops if s) if i >= 0]
  return text[:min(ends)] if ends else text


def _after_phrase(text: str, phrase: str) -> str | None:
  """The rest of the line after the first `phrase` (case-sensitive), less a final full
  stop; None when the phrase is absent."""
  at = text.find(phrase)
  if at < 0:
    return None
  rest = text[at + len(phrase):].split("\n", 1)[0]
  return rest[:-1] if rest.endswith(".") else rest


def bbh_answer(output: str, *, cot: bool) -> str | None:
  """BBH's reading of an output; None for a CoT output without "the answer is "."""
  text = cut_at_stops(output, BBH_STOPS)
  if cot:
    found = _after_phrase(text, "the answer is ")
    return None if found is None else found.strip()
  return text.strip()


def bbh_correct(output: str, gold: str, *, cot: bool) -> bool:
  return bbh_answer(output, cot=cot) == gold.strip()


def _no_case_no_punct(text: str) -> str:
  return "".join(ch for ch in text.lower() if ch not in string.punctuation).strip()


def mmlu_cot_answer(output: str) -> str | None:
  found = _after_phrase(metrics.as_text(output), "answer is ")
  return None if found is None else found.strip()


def mmlu_cot_correct(output: str, gold: str) -> bool:
  """Gold "(B)"; "(B)", "B" and "b." are all B; "(B) Cranial" is not."""
  found = mmlu_cot_answer(output)
  return found is not None and _no_case_no_punct(found) == _no_case_no_punct(gold)


def tydiqa_answer(output: str) -> str:
  return metrics.as_text(output).strip().split("\n", 1)[0].strip()


def tydiqa_scores(outputs: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
  """{"em", "f1"} in percent, each output read up to its first newline."""
  return metrics.squad_em_f1([list(g) for g in golds], [tydiqa_answer(o) for o in outputs])


def _number(text: str) -> float | None:
  found = _NUMBER.match(text.strip())
  if not found:
    return None
  try:
    return float(found.group(0).replace(",", "").rstrip("."))
  except ValueError:
    return None


def mgsm_answer(output: str, phrases: Sequence[str], stops: Sequence[str] = ()) -> float | None:
  """The number after the first of `phrases` (the language's "The answer is"), the output
  read up to its first newline or stop; None when there is none."""
  text = cut_at_stops(metrics.as_text(output).lstrip(), ("\n", *stops))
  hits = [(text.find(p), p) for p in phrases if p and text.find(p) >= 0]
  if not hits:
    return None
  at, phrase = min(hits)
  return _number(text[at + len(phrase):])


def mgsm_correct(output: str, gold: str, phrases: Sequence[str], stops: Sequence[str] = ()) -> bool:
  got, want = mgsm_answer(output, phrases, stops), _number(gold)
  return got is not None and want is not None and abs(got - want) < 1e-9


def correct(scorer: str, output: str, gold: str, *, cot: bool = False, phrases: Sequence[str] = (),
            stops: Sequence[str] = (), options: Sequence[str] | None = None, numeric: bool = False) -> bool:
  """Whether `output` answers `gold` under the named scorer (not `tydiqa`: see
  `tydiqa_scores`; not `mmlu_letter`: the evaluator compares likelihoods)."""
  if scorer == "bbh":
    return bbh_correct(output, gold, cot=cot)
  if scorer == "mmlu_cot":
    return mmlu_cot_correct(output, gold)
  if scorer == "mgsm":
    return mgsm_correct(output, gold, phrases, stops)
  if scorer == "lenient":
    kw = dict(options=options, numeric=numeric)
    return metrics.normalize(metrics.extract_answer(output, **kw)) == metrics.normalize(
        metrics.extract_answer(gold, **kw))
  raise ValueError(f"scorer {scorer!r} does not judge one output; use one of "
                   f"{[s for s in SCORERS if s not in ('tydiqa', 'mmlu_letter')]}")


def extracted(scorer: str, output: str, *, cot: bool = False, phrases: Sequence[str] = (),
              stops: Sequence[str] = (), options=None, numeric: bool = False) -> str:
  """The answer a scorer reads from an output, for reports and majority votes ("" if none)."""
  if scorer == "bbh":
    found = bbh_answer(output, cot=cot)
  elif scorer == "mmlu_cot":
    found = mmlu_cot_answer(output)
    found = None if found is None else _no_case_no_punct(found)
  elif scorer == "mgsm":
    number = mgsm_answer(output, phrases, stops)
    found = None if number is None else metrics.normalize_number(repr(number))
  elif scorer == "tydiqa":
    found = tydiqa_answer(output)
  else:
    found = metrics.extract_answer(output, options=options, numeric=numeric)
  return found or ""


def self_consistency(scorer: str, samples: Sequence[str], gold: str, **how) -> bool:
  """Whether the majority answer of sampled CoT outputs (Wang et al. 2022) is right: the
  answers are read by the scorer, voted (`metrics.majority_vote`), and a sample giving the
  winning answer is judged."""
  answers = [extracted(scorer, s, **how) for s in samples]
  voted, votes = metrics.majority_vote(answers)
  if not votes:
    return False
  winner = samples[answers.index(voted)]
  how = {k: v for k, v in how.items() if k in ("cot", "phrases", "stops", "options", "numeric")}
  return correct(scorer, winner, gold, **how)
