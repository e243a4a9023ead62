"""Benchmark evaluation: answer extraction, metrics, self-consistency, and the evaluator.

    evaluator = Evaluator(decoder, ["embedded_sort_numbers_zsopt", ...], max_examples=64)
    results = evaluator.run(params, step=1000)          # per task, per column, normalised average
    write_results(results, "/tmp/run/eval")             # results_1000.json, results_1000.md, TensorBoard

Answer extraction (`extract_answer`), applied to model outputs and to targets alike:
  1. the text after the last answer phrase ("So the answer is X.", "the answer is X",
     "Answer: X"), up to the end of its line and a final full stop;
  2. without a phrase: the last non-empty line (`fallback="last_line"`) or "" (`"empty"`);
  3. with `numeric=True` (math: MGSM, arithmetic): the last number of that text, or of the
     whole output when the text has none;
  4. with `options`: letters "(B)", "B", "B)" map to the option text, and an answer that
     names exactly one option maps to it.

Columns and the normalised average follow the Flan-PaLM paper (Chung et al. 2022, Table
"normalized average"): one score per evaluated column among MMLU Direct/CoT, BBH
Direct/CoT, TyDiQA (Direct, exact match) and MGSM (CoT, accuracy); each normalised as
`100 * (score - random) / (100 - random)` and averaged over the evaluated columns.
Random baselines we chose: MMLU 25 (four options); BBH and any other multiple-choice
task: the mean over its examples of 100 / number of options (0 for free-form tasks like
word sorting), averaged over the column's tasks; TyDiQA and MGSM 0 (free-form answers).
Tasks outside those suites (e.g. the embedded held-out families) form "Held-out
Direct/CoT" columns with the same per-task rule.
"""
from __future__ import annotations

import collections
import dataclasses
import glob
import json
import os
import re
import string
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from flan_jax.tasks import templates
# At import, not lazily: DecodeConfig is gin-configurable, and gin refuses new configurables
# once a training run has locked the config.
from flan_jax import decoding

PyTree = Any

# ----------------------------------------------------------------------------------------
# Answer extraction and normalisation.

# "So the answer is X", "Therefore, the final answer is X", "The answer: X", "Answer: X".
_ANSWER_PHRASE = re.compile(r"(?:the (?:final |correct )?answer is|answer\s*:)\s*:?\s*",
                            re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_LETTER = re.compile(r"^\(?([A-Za-z])\)?(?:[\s.:)]|$)")
_OPTIONS_HEADER = templates.OPTIONS_HEADER  # how the FLAN formats list answer options


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def normalize(text: str) -> str:
  """Lower case, single spaces, no surrounding quotes/brackets or final punctuation."""
  text = " ".join(_text(text).lower().split())
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
  found = _NUMBER.findall(_text(text))
  return normalize_number(found[-1]) if found else None


def parse_options(prompt: str) -> list[str] | None:
  """The options of the last "OPTIONS:\\n- a\\n- b" block of a FLAN prompt (the query's,
  after any few-shot exemplars), or None."""
  prompt = _text(prompt)
  at = prompt.rfind(_OPTIONS_HEADER)
  if at < 0:
    return None
  options = []
  for line in prompt[at + len(_OPTIONS_HEADER):].splitlines()[1:]:
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
  text = _text(output).strip()
  phrases = list(_ANSWER_PHRASE.finditer(text))
  if phrases:
    answer = text[phrases[-1].end():].split("\n", 1)[0].strip()
    answer = re.sub(r"\.\s*$", "", answer).strip()
  elif fallback == "last_line":
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    answer = lines[-1] if lines else ""
  elif fallback == "empty":
    answer = ""
  else:
    raise ValueError(f"extract_answer: fallback={fallback!r}; use 'last_line' or 'empty'")
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
# Metrics: lists of strings in, percentages out.


def exact_match(targets: Sequence[str], predictions: Sequence[str]) -> float:
  """Percentage of predictions equal to their target after `normalize`."""
  if len(targets) != len(predictions):
    raise ValueError(f"exact_match: {len(targets)} targets but {len(predictions)} predictions")
  if not targets:
    return 0.0
  return 100.0 * sum(normalize(t) == normalize(p) for t, p in zip(targets, predictions)) / len(targets)


def multiple_choice_accuracy(targets: Sequence[str], outputs: Sequence[str],
                             options: Sequence[Sequence[str]]) -> float:
  """Accuracy after mapping each output (letter or text) onto its options."""
  picked = [extract_answer(o, options=opts) for o, opts in zip(outputs, options)]
  return exact_match(targets, picked)


def cot_accuracy(targets: Sequence[str], outputs: Sequence[str], *,
                 options: Sequence[Sequence[str] | None] | None = None, numeric: bool = False) -> float:
  """Accuracy of the answers extracted from CoT outputs against the extracted targets."""
  options = options or [None] * len(outputs)
  preds = [extract_answer(o, options=opts, numeric=numeric) for o, opts in zip(outputs, options)]
  golds = [extract_answer(t, options=opts, numeric=numeric) for t, opts in zip(targets, options)]
  return exact_match(golds, preds)


def _squad_normalize(text: str) -> str:
  """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
  text = "".join(ch for ch in _text(text).lower() if ch not in set(string.punctuation))
  text = re.sub(r"\b(a|an|the)\b", " ", text)
  return " ".join(text.split())


def _f1(gold: str, pred: str) -> float:
  g, p = _squad_normalize(gold).split(), _squad_normalize(pred).split()
  if not g or not p:
    return float(g == p)
  common = collections.Counter(g) & collections.Counter(p)
  same = sum(common.values())
  if not same:
    return 0.0
  precision, recall = same / len(p), same / len(g)
  return 2 * precision * recall / (precision + recall)


def squad_em_f1(targets: Sequence[str | Sequence[str]], predictions: Sequence[str]) -> dict[str, float]:
  """SQuAD/TyDiQA-GoldP exact match and token F1 (percent), max over each row's gold answers."""
  if len(targets) != len(predictions):
    raise ValueError(f"squad_em_f1: {len(targets)} targets but {len(predictions)} predictions")
  if not targets:
    return {"em": 0.0, "f1": 0.0}
  em = f1 = 0.0
  for golds, pred in zip(targets, predictions):
    golds = [golds] if isinstance(golds, (str, bytes)) else list(golds)
    em += max(float(_squad_normalize(g) == _squad_normalize(pred)) for g in golds)
    f1 += max(_f1(g, pred) for g in golds)
  return {"em": 100.0 * em / len(targets), "f1": 100.0 * f1 / len(targets)}


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
  """Wang et al. (2022): the majority answer over k sampled CoT outputs (see majority_vote)."""
  return majority_vote([extract_answer(s, options=options, numeric=numeric) for s in samples])


def normalized_score(score: float, random_baseline: float) -> float:
  """100 * (score - random) / (100 - random): 0 = chance, 100 = perfect."""
  if random_baseline >= 100:
    raise ValueError(f"random baseline {random_baseline} must be below 100")
  return 100.0 * (score - random_baseline) / (100.0 - random_baseline)


def normalized_average(column_scores: Mapping[str, float], baselines: Mapping[str, float]) -> float:
  """Mean of the columns' normalised scores (the paper's "Norm. avg")."""
  if not column_scores:
    raise ValueError("normalized_average of no columns")
  return float(np.mean([normalized_score(s, baselines.get(c, 0.0)) for c, s in column_scores.items()]))


# ----------------------------------------------------------------------------------------
# Suites: which column a task goes to, how it is scored.

COLUMNS = ("MMLU Direct", "MMLU CoT", "BBH Direct", "BBH CoT", "TyDiQA", "MGSM",
           "Held-out Direct", "Held-out CoT")
SUITE_BASELINES = {"MMLU": 25.0, "TyDiQA": 0.0, "MGSM": 0.0}  # others: from each task's options
_MATH = re.compile(r"mgsm|gsm8k|arithmetic|svamp|asdiv|math", re.IGNORECASE)


def is_cot_task(name: str) -> bool:
  return bool(re.search(r"(^|_)(zs|fs)?cot($|_)", name)) or name.endswith("cot")


def suite_of(name: str) -> str:
  low = name.lower()
  for key, suite in (("mmlu", "MMLU"), ("bbh", "BBH"), ("bigbench", "BBH"), ("tydiqa", "TyDiQA"),
                     ("mgsm", "MGSM")):
    if key in low:
      return suite
  return "Held-out"


def column_of(name: str) -> str:
  suite = suite_of(name)
  if suite in ("TyDiQA", "MGSM"):
    return suite
  return f"{suite} {'CoT' if is_cot_task(name) else 'Direct'}"


def is_numeric_task(name: str) -> bool:
  """Math tasks, whose answers are compared as numbers (not MMLU's multiple-choice
  mathematics subjects)."""
  return suite_of(name) != "MMLU" and bool(_MATH.search(name))


@dataclasses.dataclass
class EvalExample:
  """One validation example: token ids for the model, text for the metrics."""
  inputs: list[int]
  prompt: str
  target: str
  options: list[str] | None
  answers: list[str] | None = None  # all gold answers (TyDiQA); default [target answer]
  raw: dict | None = None           # the seqio example, for the task's postprocessor


def load_examples(task, split: str, max_examples: int | None, input_length: int | None = None) -> list[EvalExample]:
  """The first `max_examples` examples of a seqio task's split, unshuffled, inputs cut to
  `input_length` tokens (keeping the end of the prompt: the query and its options)."""
  ds = task.get_dataset(sequence_length=None, split=split, shuffle=False, use_cached=False, num_epochs=1,
                        trim_output_features=False, try_in_mem_cache=False)  # no cache: take() stops early
  if max_examples:
    ds = ds.take(max_examples)
  out = []
  for ex in ds.as_numpy_iterator():
    ids = [int(t) for t in ex["inputs"]]
    if input_length and len(ids) > input_length:
      ids = ids[-input_length:]
    prompt = _text(ex.get("inputs_pretokenized", b""))
    target = _text(ex.get("targets_pretokenized", b""))
    answers = None
    if "answers" in ex:
      answers = [_text(a) for a in np.atleast_1d(ex["answers"])]
    options = [_text(o) for o in ex["options"]] if "options" in ex else parse_options(prompt)
    out.append(EvalExample(ids, prompt, target, options, answers, raw=ex))
  return out


# ----------------------------------------------------------------------------------------
# The evaluator.


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """How tasks are evaluated (plain arguments; `flan_jax.eval` builds it from gin).

  mode: "generate" decodes with `decode`; "score" picks the option of highest
    log-likelihood for tasks with options (others are still generated).
  self_consistency: k > 1 samples (temperature `sc_temperature`, top-k `sc_top_k`) per CoT
    example and a majority vote of their answers; 0/1 = one decode.
  score_targets: also report the mean per-token log-likelihood of the gold targets
    (`target_logprob`, in nats; teacher forced), a smooth signal for small models.
  """
  max_examples: int | None = 64
  batch_size: int = 16
  input_length: int = 512
  mode: str = "generate"
  self_consistency: int = 0
  sc_temperature: float = 0.7
  sc_top_k: int = 40
  score_targets: bool = True
  num_logged_examples: int = 3
  seed: int = 0


class Evaluator:
  """Evaluates seqio tasks with a `decoding.SequenceDecoder`: decode or score, extract, score."""

  def __init__(self, decoder, task_names: Sequence[str], *, split: str = "validation",
               decode_config=None, config: EvalConfig = EvalConfig()):
    import seqio
    if config.mode not in ("generate", "score"):
      raise ValueError(f"EvalConfig.mode={config.mode!r}; use 'generate' or 'score'")
    self.decoder = decoder
    self.config = config
    self.decode_config = decode_config or decoding.DecodeConfig(max_decode_len=64)
    self.split = split
    self.tasks = [seqio.get_mixture_or_task(n) for n in task_names]
    self._examples: dict[str, list[EvalExample]] = {}

  def examples(self, task) -> list[EvalExample]:
    if task.name not in self._examples:
      self._examples[task.name] = load_examples(task, self.split, self.config.max_examples,
                                                self.config.input_length)
    return self._examples[task.name]

  # -- model calls, in fixed-shape batches (one compilation per setting) -------------------

  def _batches(self, rows: list):
    b = self.config.batch_size
    for start in range(0, len(rows), b):
      yield start, rows[start:start + b]

  def _padded_inputs(self, exs: Sequence[EvalExample]) -> np.ndarray:
    b, s = self.config.batch_size, self.config.input_length
    arr = np.zeros((b, s), np.int32)
    for i, ex in enumerate(exs):
      arr[i, :len(ex.inputs)] = ex.inputs
    return arr

  def _generate(self, params, exs, decode_config, seed=0) -> list[str]:
    vocab = self._vocab
    texts = []
    for _, chunk in self._batches(exs):
      out = self.decoder.decode(params, self._padded_inputs(chunk), decode_config, rng=seed)
      for row in out.tokens[:len(chunk)]:
        ids = [int(t) for t in row]
        if decode_config.eos_id in ids:
          ids = ids[:ids.index(decode_config.eos_id)]
        texts.append(vocab.decode([t for t in ids if t > 0]))
    return texts

  def _target_logprob(self, params, exs) -> float:
    vocab = self._vocab
    total, tokens = 0.0, 0
    for _, chunk in self._batches(exs):
      targets = [vocab.encode(ex.target)[:self.decode_config.max_decode_len - 1] + [1] for ex in chunk]
      tgt = np.zeros((self.config.batch_size, self.decode_config.max_decode_len), np.int32)
      for i, t in enumerate(targets):
        tgt[i, :len(t)] = t
      scores = self.decoder.score(params, self._padded_inputs(chunk), tgt)[:len(chunk)]
      total += float(np.sum(scores))
      tokens += sum(len(t) for t in targets)
    return total / max(tokens, 1)

  def _score_options(self, params, exs) -> list[str]:
    vocab = self._vocab
    options = [ex.options for ex in exs]
    ids = [[vocab.encode(o) + [1] for o in opts] for opts in options]
    lls = self.decoder.score_options(params, [ex.inputs for ex in exs], ids, batch_size=self.config.batch_size)
    return [opts[int(np.argmax(ll))] for opts, ll in zip(options, lls)]

  # -- one task ---------------------------------------------------------------------------

  def evaluate_task(self, params, task) -> dict:
    self._vocab = task.output_features["targets"].vocabulary
    exs = self.examples(task)
    if not exs:
      raise ValueError(f"task {task.name!r} has no {self.split!r} examples to evaluate")
    name, cfg = task.name, self.config
    cot, numeric = is_cot_task(name), is_numeric_task(name)
    has_options = all(ex.options for ex in exs)
    t0 = time.perf_counter()
    result: dict[str, Any] = {"suite": suite_of(name), "column": column_of(name), "num_examples": len(exs)}

    if cfg.mode == "score" and has_options and not cot:
      outputs = self._score_options(params, exs)
      result["method"] = "option_loglikelihood"
    elif cot and cfg.self_consistency > 1:
      sc = decoding.DecodeConfig(max_decode_len=self.decode_config.max_decode_len,
                                 temperature=cfg.sc_temperature, top_k=cfg.sc_top_k)
      samples = [self._generate(params, exs, sc, seed=cfg.seed + k) for k in range(cfg.self_consistency)]
      outputs = [self_consistency([s[i] for s in samples], options=ex.options, numeric=numeric)[0]
                 for i, ex in enumerate(exs)]
      result["method"] = f"self_consistency@{cfg.self_consistency}"
    else:
      outputs = self._generate(params, exs, self.decode_config)
      result["method"] = self.decode_config.method

    preds = [extract_answer(o, options=ex.options, numeric=numeric) for o, ex in zip(outputs, exs)]
    golds = [extract_answer(ex.target, options=ex.options, numeric=numeric) for ex in exs]
    metrics = {"accuracy": exact_match(golds, preds)}
    if result["suite"] == "TyDiQA":
      metrics.update(squad_em_f1([ex.answers or [g] for ex, g in zip(exs, golds)], preds))
      metrics["accuracy"] = metrics["em"]
    metrics.update(self._task_metrics(task, exs, outputs))
    if cfg.score_targets:
      metrics["target_logprob"] = self._target_logprob(params, exs)
    baselines = [100.0 / len(ex.options) if ex.options else 0.0 for ex in exs]
    result.update(metrics=metrics, score=metrics["accuracy"],
                  random_baseline=SUITE_BASELINES.get(result["suite"], float(np.mean(baselines))),
                  seconds=time.perf_counter() - t0,
                  examples=[{"prompt": ex.prompt[-300:], "target": ex.target, "output": o, "answer": p}
                            for ex, o, p in list(zip(exs, outputs, preds))[:cfg.num_logged_examples]])
    return result

  @staticmethod
  def _task_metrics(task, exs, outputs) -> dict[str, float]:
    """The task's own seqio metrics on its postprocessed targets and outputs (prefixed
    `task/`); a metric that fails is reported as skipped, not fatal."""
    out = {}
    post = task.postprocess_fn or (lambda x, example=None, is_target=False: x)
    try:
      targets = [post(ex.target, example=ex.raw, is_target=True) for ex in exs]
      preds = [post(o, example=ex.raw, is_target=False) for o, ex in zip(outputs, exs)]
    except Exception:  # postprocessors written for other pipelines; our metrics still stand
      return out
    for fn in getattr(task, "predict_metric_fns", task.metric_fns):
      try:
        for k, v in fn(targets, preds).items():
          if np.ndim(v) == 0:
            out[f"task/{k}"] = float(v)
      except Exception:
        continue
    return out

  # -- every task ---------------------------------------------------------------------------

  def run(self, params, *, step: int | None = None, name: str = "model",
          log: Callable[[str], None] | None = print) -> dict:
    """Evaluates every task; returns {"tasks", "columns", "normalized", "normalized_average", ...}."""
    tasks = {}
    for task in self.tasks:
      tasks[task.name] = r = self.evaluate_task(params, task)
      if log:
        log(f"eval {task.name}: {r['score']:.1f} ({r['method']}, {r['num_examples']} examples, "
            f"{r['seconds']:.1f}s)")
    return summarize(tasks, step=step, name=name)


def summarize(tasks: Mapping[str, dict], *, step: int | None = None, name: str = "model") -> dict:
  """Per-column means, normalised scores and their average from per-task results."""
  by_column = collections.defaultdict(list)
  for r in tasks.values():
    by_column[r["column"]].append(r)
  columns = {c: float(np.mean([r["score"] for r in rs])) for c, rs in by_column.items()}
  baselines = {c: float(np.mean([r["random_baseline"] for r in rs])) for c, rs in by_column.items()}
  ordered = [c for c in COLUMNS if c in columns] + sorted(c for c in columns if c not in COLUMNS)
  return {
      "name": name, "step": step, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
      "tasks": dict(tasks),
      "columns": {c: columns[c] for c in ordered},
      "random_baselines": {c: baselines[c] for c in ordered},
      "normalized": {c: normalized_score(columns[c], baselines[c]) for c in ordered},
      "normalized_average": normalized_average(columns, baselines) if columns else None,
  }


# ----------------------------------------------------------------------------------------
# Reports.


def markdown_table(results: Sequence[Mapping]) -> str:
  """Paper layout: one row per model/checkpoint, one column per evaluated suite, Norm. avg;
  then one row per task of the last result."""
  cols = []
  for r in results:
    cols += [c for c in r["columns"] if c not in cols]
  cols.sort(key=lambda c: COLUMNS.index(c) if c in COLUMNS else len(COLUMNS))
  head = "| Model | " + " | ".join(cols) + " | Norm. avg |"
  lines = [head, "|" + " --- |" * (len(cols) + 2)]
  for r in results:
    label = r["name"] + (f" @ {r['step']}" if r.get("step") is not None else "")
    cells = [f"{r['columns'][c]:.1f}" if c in r["columns"] else "-" for c in cols]
    avg = r.get("normalized_average")
    lines.append(f"| {label} | " + " | ".join(cells) + f" | {'-' if avg is None else f'{avg:.1f}'} |")
  if results:
    last = results[-1]
    lines += ["", "| Task | Column | Method | Examples | Score | Random | target log-lik |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for task, t in last["tasks"].items():
      ll = t["metrics"].get("target_logprob")
      lines.append(f"| {task} | {t['column']} | {t['method']} | {t['num_examples']} | {t['score']:.1f} | "
                   f"{t['random_baseline']:.1f} | {'-' if ll is None else f'{ll:.3f}'} |")
  return "\n".join(lines) + "\n"


def write_results(results: Mapping, output_dir: str, *, tensorboard: bool = True) -> dict[str, str]:
  """Writes results_<step>.json and .md, refreshes results.md (a row per results_*.json
  there) and TensorBoard scalars under `output_dir`. Returns the paths written."""
  os.makedirs(output_dir, exist_ok=True)
  tag = "init" if results.get("step") is None else str(results["step"])
  json_path = os.path.join(output_dir, f"results_{tag}.json")
  with open(json_path, "w") as f:
    json.dump(results, f, indent=1, default=float)
  md_path = os.path.join(output_dir, f"results_{tag}.md")
  with open(md_path, "w") as f:
    f.write(markdown_table([results]))
  every = []
  for p in glob.glob(os.path.join(output_dir, "results_*.json")):
    with open(p) as f:
      every.append(json.load(f))
  every.sort(key=lambda r: (r.get("step") is not None, r.get("step") or 0))
  all_path = os.path.join(output_dir, "results.md")
  with open(all_path, "w") as f:
    f.write(markdown_table(every))
  if tensorboard:
    log_scalars(results, output_dir)
  return {"json": json_path, "markdown": md_path, "table": all_path}


def log_scalars(results: Mapping, output_dir: str) -> None:
  from tensorboardX import SummaryWriter
  step = results.get("step") or 0
  with SummaryWriter(output_dir) as writer:
    for col, v in results["columns"].items():
      writer.add_scalar(f"eval/{col.replace(' ', '_')}", v, step)
    if results.get("normalized_average") is not None:
      writer.add_scalar("eval/normalized_average", results["normalized_average"], step)
    for task, t in results["tasks"].items():
      for k, v in t["metrics"].items():
        writer.add_scalar(f"eval_tasks/{task}/{k}", v, step)


# ----------------------------------------------------------------------------------------
# BIG-bench JSON tasks (BBH sources), registered on request.

BBH_BIGBENCH_TASKS = ("date_understanding", "navigate", "sports_understanding", "word_sorting")


def bigbench_task_dir(data_dir=None) -> str | None:
  """BIG-bench's `benchmark_tasks` directory: `<data dir>/bigbench/benchmark_tasks` as
  `flan-jax data prepare bigbench` writes it, else that of an installed `bigbench` package,
  else None."""
  from flan_jax.tasks.collections import catalogue
  prepared = catalogue.data_dir(data_dir) / "bigbench" / "benchmark_tasks"
  if prepared.is_dir():
    return str(prepared)
  try:
    import importlib.util
    spec = importlib.util.find_spec("bigbench")
  except (ImportError, ValueError):
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  path = os.path.join(list(spec.submodule_search_locations)[0], "benchmark_tasks")
  return path if os.path.isdir(path) else None


def bigbench_examples(task_json: dict) -> list[tuple[str, str, list[str]]]:
  """A BIG-bench JSON task's examples as (question with the task prefix, target, options):
  multiple-choice examples (`target_scores`) give their best-scored option as the target and
  all options; free-form ones their first target and no options."""
  prefix = task_json.get("task_prefix", "").strip()
  out = []
  for ex in task_json["examples"]:
    question = f"{prefix}\n{ex['input'].strip()}" if prefix else ex["input"].strip()
    if ex.get("target_scores"):
      options = list(ex["target_scores"])
      out.append((question, max(options, key=lambda o: ex["target_scores"][o]), options))
    else:
      out.append((question, ex["target"] if isinstance(ex["target"], str) else ex["target"][0], []))
  return out


def _bigbench_rows(task_json: dict) -> list[dict]:
  rows = []
  for question, target, options in bigbench_examples(task_json):
    listed = templates.render_options(options) if options else ""
    rows.append({"inputs": f"Q: {question}{listed}\nA:", "targets": target, "options": options})
  return rows


def register_bigbench_tasks(names: Sequence[str] = BBH_BIGBENCH_TASKS, *, max_examples: int = 250,
                            vocabulary=None, data_dir=None) -> list[str]:
  """Registers `bbh_bigbench_<name>` seqio tasks (zero-shot, direct, options shown) from
  BIG-bench's JSON tasks (`bigbench_task_dir`: `flan-jax data prepare bigbench`, or an
  installed `bigbench` package), split "validation" = the first `max_examples` examples.
  Returns the names registered; [] when neither is there."""
  from flan_jax.tasks import api
  root = bigbench_task_dir(data_dir)
  if root is None:
    return []
  registered = []
  for name in names:
    path = os.path.join(root, name, "task.json")
    if not os.path.isfile(path):
      raise ValueError(f"BIG-bench task {name!r} has no {path} (tasks with subtasks are not supported); "
                       f"pick one of the directories in {root}")
    with open(path) as f:
      rows = [{**r, "answers": [r["targets"]]} for r in _bigbench_rows(json.load(f))[:max_examples]]
    registered.append(api.register_eval_task(f"bbh_bigbench_{name}", lambda rows=rows: rows,
                                             vocabulary=vocabulary))
  return registered


def expand_tasks(names: Sequence[str]) -> list[str]:
  """Task names, with mixtures replaced by their tasks (sorted, no duplicates)."""
  import seqio
  from flan_jax.tasks import api
  out = []
  for n in names:
    if api.is_sampled_mixture(n):
      out += api.sampled_mixture_tasks(n, "validation")
    elif n in seqio.MixtureRegistry.names():
      out += [t.name for t in seqio.get_mixture_or_task(n).tasks]
    elif n in seqio.TaskRegistry.names():
      out.append(n)
    else:  # a task family is the mixture of its formats; anything else raises, naming close names
      from flan_jax import data
      out += [t.name for t in getattr(data.get_mixture_or_task(n), "tasks", ())]
  return list(dict.fromkeys(sorted(out)))


# ----------------------------------------------------------------------------------------
# Evaluation inside the training loop (flan_jax.train: eval_period, eval_mixture_or_task_name).


def training_evaluator(model, mesh, mixture_or_task_name: str, *, max_examples: int, input_length: int,
                       max_decode_len: int, batch_size: int = 16) -> Evaluator:
  """An Evaluator over the training mesh, greedy decoding, built once per run."""
  decoder = decoding.SequenceDecoder(model, mesh)
  return Evaluator(decoder, expand_tasks([mixture_or_task_name]),
                   decode_config=decoding.DecodeConfig(max_decode_len=max_decode_len),
                   config=EvalConfig(max_examples=max_examples, batch_size=batch_size,
                                     input_length=input_length))


def evaluate_during_training(evaluator: Evaluator, params, step: int, model_dir: str,
                             log: Callable[[str], None] = print) -> dict | None:
  """Evaluates the current params and writes MODEL_DIR/eval; an error is logged, never
  raised, so that evaluation cannot stop a training run."""
  import jax
  try:
    results = evaluator.run(evaluator.decoder.put_params(params), step=step,
                            name=os.path.basename(os.path.normpath(model_dir)), log=None)
    if jax.process_index() == 0:
      write_results(results, os.path.join(model_dir, "eval"))
    cols = ", ".join(f"{c} {v:.1f}" for c, v in results["columns"].items())
    log(f"eval at step {step}: {cols} | norm. avg {results['normalized_average']:.1f}")
    return results
  except Exception as e:  # noqa: BLE001 - reported, training goes on
    log(f"eval at step {step} failed ({type(e).__name__}: {e}); training continues")
    return None
