"""The evaluator: decode (or score) seqio evaluation tasks, extract answers, score them.

    evaluator = Evaluator(decoder, ["embedded_sort_numbers_zsopt", ...], config=EvalConfig(max_examples=64))
    results = evaluator.run(params, step=1000)   # per task, per column, normalised average
    eval_report.write_results(results, "/tmp/run/eval")

Answers and metrics come from `flan_jax.tasks.metrics` (the functions the tasks'
postprocessors use too); where a task's score goes and how its answers are read is the
record its suite wrote when registering it (`metrics.record_eval_task`). A task outside
the suites (e.g. a held-out FLAN family) goes to "Held-out Direct/CoT": CoT when its FLAN
format is a CoT one, numeric when its catalogue category is arithmetic.
Reports are written by `flan_jax.evaluation.eval_report`; `flan-jax eval` is `flan_jax.evaluation.evaluate`.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

# At import, not lazily: DecodeConfig is gin-configurable, and gin refuses new configurables
# once a training run has locked the config.
from flan_jax.inference import decoding
from flan_jax.evaluation import eval_report
from flan_jax.tasks import api, lookup
from flan_jax.tasks import cache_reader
from flan_jax.tasks import metrics
from flan_jax.tasks import scoring
from flan_jax.tasks import templates

PyTree = Any


class MetricError(ValueError):
  """A task's own metric (or postprocessor) failed; names the task and the metric."""


def raise_metric_failures(results: Mapping, output_dir: str | None = None) -> None:
  """Raises MetricError naming every failed task metric of `results` (from `summarize`)."""
  failures = results.get("metric_failures") or {}
  if failures:
    listed = "; ".join(f"task {task}: metric {metric} failed ({error})"
                       for task, failed in failures.items() for metric, error in failed.items())
    where = f" (results with metric_failures written to {output_dir})" if output_dir else ""
    raise MetricError(f"{listed}{where}")


def task_info(task) -> metrics.EvalTaskInfo:
  """How a seqio task is scored: its suite's record, else a held-out task's (see above)."""
  recorded = metrics.recorded_eval_task(task.name)
  if recorded is not None:
    return recorded
  try:
    family = api.get_task_info(task.name)
  except KeyError:  # a plain seqio task, not from the FLAN catalogue
    return metrics.heldout_task_info(cot=False, category=None)
  fmt = templates.FORMATS.get(task.name[len(family.name) + 1:])  # the variant's FLAN format
  return metrics.heldout_task_info(cot=bool(fmt and fmt.cot), category=family.category)


@dataclasses.dataclass
class EvalExample:
  """One validation example: token ids for the model, text for the metrics."""
  inputs: list[int]
  prompt: str
  target: str
  options: list[str] | None
  answers: list[str] | None = None  # all gold answers (TyDiQA); default [target answer]
  raw: dict | None = None           # the seqio example, for the task's postprocessor
  exemplars: int = 0                # exemplars the prompt had before fitting
  dropped: int = 0                  # whole exemplars dropped to fit the input length
  truncated: bool = False           # still too long without exemplars: cut from the left


DROP_EXEMPLARS = ("leading", "trailing")


def fit_prompt(encode: Callable[[str], list[int]], prefix: str, shots: Sequence[str], query: str,
               input_length: int | None, *, eos_id: int = 1, drop: str = "leading"
               ) -> tuple[list[int], str, int, bool]:
  """(token ids with EOS, prompt text, exemplars dropped, truncated) of a few-shot prompt fitted
  to `input_length` tokens: whole exemplars are dropped (the first ones with drop="leading";
  the last ones, as hendrycks/test's evaluate_flan.py does, with "trailing") until the
  prompt fits; a prompt that does not fit with none is cut from the left (its end, the
  question, kept). The ids are always `encode` of the whole prompt text."""
  if drop not in DROP_EXEMPLARS:
    raise ValueError(f"drop={drop!r}; use one of {DROP_EXEMPLARS}")
  shots = list(shots)
  for dropped in range(len(shots) + 1):
    kept = shots[dropped:] if drop == "leading" else shots[:len(shots) - dropped]
    text = prefix + "".join(kept) + query
    ids = list(encode(text)) + [eos_id]
    if not input_length or len(ids) <= input_length:
      return ids, text, dropped, False
  return ids[-input_length:], text, len(shots), True


def load_examples(task, split: str, max_examples: int | None, input_length: int | None = None, *,
                  vocabulary=None, drop: str = "leading") -> list[EvalExample]:
  """The first `max_examples` examples of a seqio task's split, unshuffled, tokenized with
  `vocabulary` (default: the task's) and fitted to `input_length` tokens (`fit_prompt`).

  A few-shot prompt kept in parts (the evaluation suites' `prefix`/`shots`/`query`) loses
  whole exemplars; any other prompt is re-tokenized from its text and, if too long, cut
  from the left. A task tokenized with another vocabulary and without its prompt text
  cannot be evaluated with `vocabulary`, and says so."""
  ds = task.get_dataset(sequence_length=None, split=split, shuffle=False, use_cached=False, num_epochs=1,
                        trim_output_features=False, try_in_mem_cache=False)  # no cache: take() stops early
  if max_examples:
    ds = ds.take(max_examples)
  own = task.output_features["inputs"].vocabulary
  vocab = vocabulary or own
  same_vocab = vocabulary is None or _same_vocabulary(vocab, own)
  out = []
  for ex in ds.as_numpy_iterator():
    prompt = metrics.as_text(ex.get("inputs_pretokenized", b""))
    if "query" in ex:
      shots = [metrics.as_text(s) for s in np.atleast_1d(ex["shots"])]
      ids, prompt, dropped, truncated = fit_prompt(vocab.encode, metrics.as_text(ex["prefix"]), shots,
                                                   metrics.as_text(ex["query"]), input_length,
                                                   eos_id=vocab.eos_id, drop=drop)
    else:
      shots = []
      if same_vocab:
        ids = [int(t) for t in ex["inputs"]]
      elif "inputs_pretokenized" in ex:
        ids = list(vocab.encode(prompt)) + [vocab.eos_id]
      else:
        raise ValueError(f"task {task.name!r} is tokenized with another vocabulary than the checkpoint's "
                         "and keeps no prompt text (inputs_pretokenized) to re-tokenize")
      dropped, truncated = 0, bool(input_length and len(ids) > input_length)
      if truncated:
        ids = ids[-input_length:]
    target = metrics.as_text(ex.get("targets_pretokenized", b""))
    answers = None
    if "answers" in ex:
      answers = [metrics.as_text(a) for a in np.atleast_1d(ex["answers"])]
    options = [metrics.as_text(o) for o in ex["options"]] if "options" in ex else metrics.parse_options(prompt)
    out.append(EvalExample(ids, prompt, target, options, answers, raw=ex, exemplars=len(shots),
                           dropped=dropped, truncated=truncated))
  return out


def _same_vocabulary(a, b) -> bool:
  """Whether two vocabularies tokenize alike: the same object, or the same model (its hash)."""
  return a is b or (cache_reader.vocabulary_fields(a)["sha256"] is not None
                    and cache_reader.vocabulary_fields(a) == cache_reader.vocabulary_fields(b))


def fitting_summary(exs: Sequence[EvalExample], input_length: int | None) -> dict:
  """How a task's prompts were fitted to the input length."""
  return {"prompts": len(exs), "input_length": input_length,
          "with_exemplars": sum(ex.exemplars > 0 for ex in exs),
          "lost_exemplars": sum(ex.dropped > 0 for ex in exs),
          "exemplars_dropped": sum(ex.dropped for ex in exs),
          "truncated": sum(ex.truncated for ex in exs)}


# ----------------------------------------------------------------------------------------
# The evaluator.


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """How tasks are evaluated (plain arguments; `flan_jax.evaluation.evaluate` builds it from gin).

  mode: "generate" decodes with `decode`; "score" picks the option of highest
    log-likelihood for tasks outside the suites that have options (others are generated).
    MMLU direct is always scored by the likelihood of the letters A-D, as hendrycks/test.
  scoring: "reference" reads answers by each benchmark's own rule (`tasks/scoring.py`);
    "lenient" by flan_jax's `metrics.extract_answer` everywhere, reported under
    "<column> (lenient)" so that it never fills a paper column.
  self_consistency: k > 1 samples (temperature `sc_temperature`, top-k `sc_top_k`) per CoT
    example and a majority vote of their answers, reported as its own "CoT + SC" row beside
    the greedy CoT figures; 0/1 = greedy only.
  drop_exemplars: which whole exemplars a too-long prompt loses first (`fit_prompt`).
  score_targets: also report the mean per-token log-likelihood of the gold targets
    (`target_logprob`, in nats; teacher forced), a smooth signal for small models.
  """
  max_examples: int | None = 64
  batch_size: int = 16
  input_length: int = 512
  mode: str = "generate"
  scoring: str = "reference"
  self_consistency: int = 0
  sc_temperature: float = 0.7
  sc_top_k: int = 40
  drop_exemplars: str = "leading"
  score_targets: bool = True
  num_logged_examples: int = 3
  seed: int = 0


class Evaluator:
  """Evaluates seqio tasks with a `decoding.SequenceDecoder`: decode or score, extract, score.

  `vocabulary` is the evaluated model's (the checkpoint's recorded SentencePiece model):
  every prompt is tokenized and every output read with it. None: each task's own."""

  def __init__(self, decoder, task_names: Sequence[str], *, split: str = "validation",
               decode_config=None, config: EvalConfig = EvalConfig(), vocabulary=None):
    import seqio
    if config.mode not in ("generate", "score"):
      raise ValueError(f"EvalConfig.mode={config.mode!r}; use 'generate' or 'score'")
    if config.scoring not in ("reference", "lenient"):
      raise ValueError(f"EvalConfig.scoring={config.scoring!r}; use 'reference' or 'lenient'")
    if config.drop_exemplars not in DROP_EXEMPLARS:
      raise ValueError(f"EvalConfig.drop_exemplars={config.drop_exemplars!r}; use one of {DROP_EXEMPLARS}")
    self.decoder = decoder
    self.config = config
    self.decode_config = decode_config or decoding.DecodeConfig(max_decode_len=64)
    self.split = split
    self.vocabulary = vocabulary
    self.tasks = [seqio.get_mixture_or_task(n) for n in task_names]
    self._examples: dict[str, list[EvalExample]] = {}

  def examples(self, task) -> list[EvalExample]:
    if task.name not in self._examples:
      self._examples[task.name] = load_examples(task, self.split, self.config.max_examples,
                                                self.config.input_length, vocabulary=self.vocabulary,
                                                drop=self.config.drop_exemplars)
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
      texts += [decoding.detokenize(vocab, row, decode_config.eos_id) for row in out.tokens[:len(chunk)]]
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

  def _likeliest(self, params, exs, choices: Sequence[Sequence[str]], eos: bool) -> list[str]:
    """For each example, the choice whose continuation the model finds likeliest."""
    vocab = self._vocab
    ids = [[vocab.encode(c) + ([1] if eos else []) for c in cs] for cs in choices]
    lls = self.decoder.score_options(params, [ex.inputs for ex in exs], ids, batch_size=self.config.batch_size)
    return [cs[int(np.argmax(ll))] for cs, ll in zip(choices, lls)]

  # -- one task ---------------------------------------------------------------------------

  def evaluate_task(self, params, task) -> dict:
    self._vocab = self.vocabulary or task.output_features["targets"].vocabulary
    exs = self.examples(task)
    if not exs:
      raise ValueError(f"task {task.name!r} has no {self.split!r} examples to evaluate")
    cfg, info = self.config, task_info(task)
    lenient = cfg.scoring == "lenient"
    scorer = "lenient" if lenient else info.scorer
    has_options = all(ex.options for ex in exs)
    t0 = time.perf_counter()
    column = f"{info.column} (lenient)" if lenient and info.scorer != "lenient" else info.column
    result: dict[str, Any] = {"suite": info.suite, "column": column, "answer": info.answer,
                              "scorer": scorer, "num_examples": len(exs), "weighted": info.weighted,
                              "fitting": fitting_summary(exs, cfg.input_length)}

    sc_outputs = None
    if info.scorer == "mmlu_letter" and not lenient:
      letters = [list(scoring.MMLU_LETTERS[:len(ex.options or scoring.MMLU_LETTERS)]) for ex in exs]
      outputs = self._likeliest(params, exs, letters, eos=False)
      result["method"] = "letter_loglikelihood"
    elif cfg.mode == "score" and has_options and not info.cot and scorer == "lenient":
      outputs = self._likeliest(params, exs, [ex.options for ex in exs], eos=True)
      result["method"] = "option_loglikelihood"
    else:
      outputs = self._generate(params, exs, self.decode_config)
      result["method"] = self.decode_config.method
      if info.cot and cfg.self_consistency > 1:
        sc = decoding.DecodeConfig(max_decode_len=self.decode_config.max_decode_len, search="sample",
                                   num_beams=1, temperature=cfg.sc_temperature, top_k=cfg.sc_top_k)
        samples = [self._generate(params, exs, sc, seed=cfg.seed + k) for k in range(cfg.self_consistency)]
        sc_outputs = [[s[i] for s in samples] for i in range(len(exs))]

    how = dict(cot=info.cot, phrases=info.answer_phrases, stops=info.stops, numeric=info.numeric)
    preds = [scoring.extracted(scorer, o, options=ex.options, **how) for o, ex in zip(outputs, exs)]
    scores = self._scores(scorer, outputs, preds, exs, how, span=info.answer == "span")
    task_scores, failures = self._task_metrics(task, exs, outputs)
    scores.update(task_scores)
    if failures:
      result["metric_failures"] = failures
    if sc_outputs is not None:
      voted = [scoring.self_consistency(scorer, samples, ex.target, options=ex.options, **how)
               for samples, ex in zip(sc_outputs, exs)]
      result["self_consistency"] = {"samples": cfg.self_consistency, "temperature": cfg.sc_temperature,
                                    "top_k": cfg.sc_top_k, "score": 100.0 * float(np.mean(voted))}
    if cfg.score_targets:
      scores["target_logprob"] = self._target_logprob(params, exs)
    baselines = [100.0 / len(ex.options) if ex.options else 0.0 for ex in exs]
    result.update(metrics=scores, score=scores["accuracy"],
                  random_baseline=metrics.SUITE_BASELINES.get(info.suite, float(np.mean(baselines))),
                  seconds=time.perf_counter() - t0,
                  examples=[{"prompt": ex.prompt[-300:], "target": ex.target, "output": o, "answer": p}
                            for ex, o, p in list(zip(exs, outputs, preds))[:cfg.num_logged_examples]])
    return result

  @staticmethod
  def _scores(scorer: str, outputs: Sequence[str], preds: Sequence[str], exs: Sequence[EvalExample],
              how: dict, span: bool = False) -> dict[str, float]:
    """{"accuracy": percent, ...} of the outputs under the task's scorer."""
    if scorer == "tydiqa":
      scores = scoring.tydiqa_scores(outputs, [ex.answers or [ex.target] for ex in exs])
      return {"accuracy": scores["em"], **scores}
    if scorer == "mmlu_letter":
      hits = [o == ex.target.strip() for o, ex in zip(outputs, exs)]
    else:
      hits = [scoring.correct(scorer, o, ex.target, options=ex.options, **how) for o, ex in zip(outputs, exs)]
    scores = {"accuracy": 100.0 * float(np.mean(hits))}
    if scorer == "lenient" and span:  # SQuAD EM/F1 of the read answers against every gold answer
      scores.update(metrics.squad_em_f1([ex.answers or [ex.target] for ex in exs], preds))
      scores["accuracy"] = scores["em"]
    return scores

  @staticmethod
  def _task_metrics(task, exs, outputs) -> tuple[dict[str, float], dict[str, str]]:
    """The task's own seqio metrics on its postprocessed targets and outputs (prefixed
    `task/`), and the failures: {metric name: "ErrorType: message"}. A failing metric is
    recorded, never dropped silently; `run` reports it and `flan-jax eval` exits 1."""
    scores, failures = {}, {}
    post = task.postprocess_fn or (lambda x, example=None, is_target=False: x)
    try:
      targets = [post(ex.target, example=ex.raw, is_target=True) for ex in exs]
      preds = [post(o, example=ex.raw, is_target=False) for o, ex in zip(outputs, exs)]
    except Exception as e:  # noqa: BLE001 - recorded and reported by run()
      return scores, {f"postprocessor {metrics.metric_name(post)}": f"{type(e).__name__}: {e}"}
    for fn in getattr(task, "predict_metric_fns", task.metric_fns):
      try:
        values = fn(targets, preds)
      except Exception as e:  # noqa: BLE001 - recorded and reported by run()
        failures[metrics.metric_name(fn)] = f"{type(e).__name__}: {e}"
        continue
      for k, v in values.items():
        if np.ndim(v) == 0:
          scores[f"task/{k}"] = float(v)
    return scores, failures

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
        for metric, error in r.get("metric_failures", {}).items():
          log(f"eval {task.name}: metric {metric} failed: {error}")
    return summarize(tasks, step=step, name=name)


def _column_mean(results: Sequence[dict], key=lambda r: r["score"]) -> float:
  """A column's score: the mean over its tasks, weighted by their examples when the tasks
  say so (MMLU: Hendrycks' overall figure is over questions)."""
  if all(r.get("weighted") for r in results):
    return float(np.average([key(r) for r in results], weights=[r["num_examples"] for r in results]))
  return float(np.mean([key(r) for r in results]))


def fitting_line(suite: str, fits: Sequence[dict]) -> str:
  """One line saying how a suite's prompts were fitted to the input length."""
  prompts = sum(f["prompts"] for f in fits)
  lost = sum(f["lost_exemplars"] for f in fits)
  truncated = sum(f["truncated"] for f in fits)
  length = fits[0]["input_length"] if fits else None
  if not any(f["with_exemplars"] for f in fits):
    how = "zero-shot prompts"
  else:
    how = (f"{lost} lost whole exemplars ({sum(f['exemplars_dropped'] for f in fits)} exemplars dropped)"
           if lost else "every exemplar kept")
  return (f"{suite}: {prompts} prompts at input length {length}: {how}; "
          f"{truncated} cut from the left (too long without exemplars)")


def summarize(tasks: Mapping[str, dict], *, step: int | None = None, name: str = "model") -> dict:
  """Per-column scores, normalised scores and their average from per-task results, with the
  CoT + self-consistency columns, the unweighted means of weighted columns and one line per
  suite on how its prompts were fitted."""
  by_column = collections.defaultdict(list)
  for r in tasks.values():
    by_column[r["column"]].append(r)
  columns = {c: _column_mean(rs) for c, rs in by_column.items()}
  baselines = {c: float(np.mean([r["random_baseline"] for r in rs])) for c, rs in by_column.items()}
  ordered = [c for c in metrics.COLUMNS if c in columns] + sorted(c for c in columns if c not in metrics.COLUMNS)
  sc = {c: _column_mean(rs, key=lambda r: r["self_consistency"]["score"]) for c, rs in by_column.items()
        if all("self_consistency" in r for r in rs)}
  fits = collections.defaultdict(list)
  for r in tasks.values():
    if "fitting" in r:
      fits[r["suite"]].append(r["fitting"])
  return {
      "name": name, "step": step, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
      "tasks": dict(tasks),
      "columns": {c: columns[c] for c in ordered},
      "unweighted_columns": {c: float(np.mean([r["score"] for r in by_column[c]])) for c in ordered
                             if all(r.get("weighted") for r in by_column[c])},
      "self_consistency_columns": {c: sc[c] for c in ordered if c in sc},
      "self_consistency": next(({k: r["self_consistency"][k] for k in ("samples", "temperature", "top_k")}
                                for r in tasks.values() if "self_consistency" in r), None),
      "random_baselines": {c: baselines[c] for c in ordered},
      "normalized": {c: metrics.normalized_score(columns[c], baselines[c]) for c in ordered},
      "normalized_average": metrics.normalized_average(columns, baselines) if columns else None,
      "fitting": {suite: fitting_line(suite, fits[suite]) for suite in sorted(
          fits, key=lambda x: metrics.SUITES.index(x) if x in metrics.SUITES else len(metrics.SUITES))},
      "metric_failures": {t: r["metric_failures"] for t, r in tasks.items() if r.get("metric_failures")},
  }


# ----------------------------------------------------------------------------------------
# Evaluation inside the training loop (flan_jax.training.train: eval_period, eval_mixture_or_task_name).


def training_evaluator(model, mesh, mixture_or_task_name: str, *, max_examples: int, input_length: int,
                       max_decode_len: int, batch_size: int = 16) -> Evaluator:
  """An Evaluator over the training mesh, greedy decoding, built once per run."""
  decoder = decoding.SequenceDecoder(model, mesh)
  return Evaluator(decoder, lookup.expand_tasks([mixture_or_task_name]),
                   decode_config=decoding.DecodeConfig(max_decode_len=max_decode_len),
                   config=EvalConfig(max_examples=max_examples, batch_size=batch_size,
                                     input_length=input_length))


def evaluate_during_training(evaluator: Evaluator, params, step: int, model_dir: str,
                             log: Callable[[str], None] = print) -> dict | None:
  """Evaluates the current params and writes MODEL_DIR/eval; an error (and a failed task
  metric) is logged, never raised, so that evaluation cannot stop a training run."""
  import jax
  try:
    results = evaluator.run(evaluator.decoder.put_params(params), step=step,
                            name=os.path.basename(os.path.normpath(model_dir)), log=None)
    if jax.process_index() == 0:
      eval_report.write_results(results, os.path.join(model_dir, "eval"))
    cols = ", ".join(f"{c} {v:.1f}" for c, v in results["columns"].items())
    log(f"eval at step {step}: {cols} | norm. avg {results['normalized_average']:.1f}")
    for task, failed in results["metric_failures"].items():
      for metric, error in failed.items():
        log(f"eval at step {step}: task {task}: metric {metric} failed ({error}); recorded in MODEL_DIR/eval")
    return results
  except Exception as e:  # noqa: BLE001 - reported, training goes on
    log(f"eval at step {step} failed ({type(e).__name__}: {e}); training continues")
    return None
