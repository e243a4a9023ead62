"""The evaluator: decode (or score) seqio evaluation tasks, extract answers, score them.

    evaluator = Evaluator(decoder, ["embedded_sort_numbers_zsopt", ...], config=EvalConfig(max_examples=64))
    results = evaluator.run(params, step=1000)   # per task, per column, normalised average
    eval_report.write_results(results, "/tmp/run/eval")

Answers and metrics come from `flan_jax.tasks.metrics` (the functions the tasks'
postprocessors use too); where a task's score goes and how its answers are read is the
record its suite wrote when registering it (`metrics.record_eval_task`). A task outside
the suites (e.g. a held-out FLAN family) goes to "Held-out Direct/CoT": CoT when its FLAN
format is a CoT one, numeric when its catalogue category is arithmetic.
Reports are written by `flan_jax.eval_report`; `flan-jax eval` is `flan_jax.eval`.
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
from flan_jax import decoding
from flan_jax import eval_report
from flan_jax.tasks import api
from flan_jax.tasks import metrics
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
    prompt = metrics.as_text(ex.get("inputs_pretokenized", b""))
    target = metrics.as_text(ex.get("targets_pretokenized", b""))
    answers = None
    if "answers" in ex:
      answers = [metrics.as_text(a) for a in np.atleast_1d(ex["answers"])]
    options = [metrics.as_text(o) for o in ex["options"]] if "options" in ex else metrics.parse_options(prompt)
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
    cfg, info = self.config, task_info(task)
    cot, numeric = info.cot, info.numeric
    has_options = all(ex.options for ex in exs)
    t0 = time.perf_counter()
    result: dict[str, Any] = {"suite": info.suite, "column": info.column, "answer": info.answer,
                              "num_examples": len(exs)}

    if cfg.mode == "score" and has_options and not cot:
      outputs = self._score_options(params, exs)
      result["method"] = "option_loglikelihood"
    elif cot and cfg.self_consistency > 1:
      sc = decoding.DecodeConfig(max_decode_len=self.decode_config.max_decode_len,
                                 temperature=cfg.sc_temperature, top_k=cfg.sc_top_k)
      samples = [self._generate(params, exs, sc, seed=cfg.seed + k) for k in range(cfg.self_consistency)]
      outputs = [metrics.self_consistency([s[i] for s in samples], options=ex.options, numeric=numeric)[0]
                 for i, ex in enumerate(exs)]
      result["method"] = f"self_consistency@{cfg.self_consistency}"
    else:
      outputs = self._generate(params, exs, self.decode_config)
      result["method"] = self.decode_config.method

    preds = [metrics.extract_answer(o, options=ex.options, numeric=numeric) for o, ex in zip(outputs, exs)]
    golds = [metrics.extract_answer(ex.target, options=ex.options, numeric=numeric) for ex in exs]
    scores = metrics.accuracy(golds, preds)
    if info.answer == "span":
      scores.update(metrics.squad_em_f1([ex.answers or [g] for ex, g in zip(exs, golds)], preds))
      scores["accuracy"] = scores["em"]
    task_scores, failures = self._task_metrics(task, exs, outputs)
    scores.update(task_scores)
    if failures:
      result["metric_failures"] = failures
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


def summarize(tasks: Mapping[str, dict], *, step: int | None = None, name: str = "model") -> dict:
  """Per-column means, normalised scores and their average from per-task results."""
  by_column = collections.defaultdict(list)
  for r in tasks.values():
    by_column[r["column"]].append(r)
  columns = {c: float(np.mean([r["score"] for r in rs])) for c, rs in by_column.items()}
  baselines = {c: float(np.mean([r["random_baseline"] for r in rs])) for c, rs in by_column.items()}
  ordered = [c for c in metrics.COLUMNS if c in columns] + sorted(c for c in columns if c not in metrics.COLUMNS)
  return {
      "name": name, "step": step, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
      "tasks": dict(tasks),
      "columns": {c: columns[c] for c in ordered},
      "random_baselines": {c: baselines[c] for c in ordered},
      "normalized": {c: metrics.normalized_score(columns[c], baselines[c]) for c in ordered},
      "normalized_average": metrics.normalized_average(columns, baselines) if columns else None,
      "metric_failures": {t: r["metric_failures"] for t, r in tasks.items() if r.get("metric_failures")},
  }


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
