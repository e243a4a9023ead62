"""Answers and metrics (flan_jax.tasks.metrics), the evaluator's records and failures, and the
reports, on hand-written outputs."""
import json

import numpy as np
import pytest
import seqio
import tensorflow as tf

from flan_jax.evaluation import eval_report
from flan_jax.evaluation import evaluator
from flan_jax.tasks import eval_suites
from flan_jax.tasks import metrics as ev


@pytest.mark.parametrize("output, kwargs, expected", [
    ("3 + 4 = 7. So the answer is 7.", {}, "7"),
    ("So the answer is January 5, 2001.", {}, "January 5, 2001"),
    ("The answer is: Tuesday", {}, "Tuesday"),
    ("Answer: blue\n", {}, "blue"),
    # the last answer phrase wins (few-shot style outputs that repeat an exemplar)
    ("So the answer is 3. Q: next... So the answer is 5.", {}, "5"),
    # no answer phrase: the last non-empty line, or nothing
    ("We count the apples.\nThere are 12 of them.\n\n", {}, "There are 12 of them."),
    ("We count the apples.", {"fallback": "empty"}, ""),
    ("", {}, ""),
    # math: the last number after the phrase, else of the whole output; commas and .0 removed
    ("5 apples and 7 pears make 12 fruits, 2 of them rotten. So the answer is 10.", {"numeric": True}, "10"),
    ("Start with 1,200. Add 300. Total 1,500", {"numeric": True}, "1500"),
    ("the answer is 4.0 dollars", {"numeric": True}, "4"),
    ("the answer is -3", {"numeric": True}, "-3"),
    ("no digits here", {"numeric": True}, "no digits here"),
    # options given as letters or text
    ("Let's see. So the answer is (B).", {"options": ["yes", "no"]}, "no"),
    ("the answer is B", {"options": ["red", "green", "blue"]}, "green"),
    ("(C) blue", {"options": ["red", "green", "blue"]}, "blue"),
    ("So the answer is Green.", {"options": ["red", "green", "blue"]}, "green"),
    ("It must be the blue one", {"options": ["red", "green", "blue"]}, "blue"),
    # a letter beyond the options is left as is
    ("the answer is (E)", {"options": ["red", "green"]}, "(E)"),
])
def test_extract_answer(output, kwargs, expected):
  assert ev.extract_answer(output, **kwargs) == expected


def test_parse_options_takes_the_query_block_of_a_fewshot_prompt():
  prompt = ("Is 3 > 2?\n\nOPTIONS:\n- yes\n- no\nyes\n\n"
            "Is 1 > 2?\n\nOPTIONS:\n- true\n- false\nLet's think step by step.")
  assert ev.parse_options(prompt) == ["true", "false"]
  assert ev.parse_options("no options here") is None


def test_self_consistency_majority_and_deterministic_ties():
  samples = ["2 + 2 = 4. So the answer is 4.", "So the answer is 5.", "the answer is 4", "I think 5. Answer: 5",
             "So the answer is 4.0"]
  assert ev.self_consistency(samples, numeric=True) == ("4", 3)
  # tie 2-2: the answer seen first wins, whatever the order of the rest
  assert ev.self_consistency(["the answer is 7", "the answer is 9", "the answer is 9", "the answer is 7"],
                             numeric=True) == ("7", 2)
  assert ev.self_consistency(["the answer is 9", "the answer is 7", "the answer is 7", "the answer is 9"],
                             numeric=True) == ("9", 2)
  # letters and option texts vote together
  assert ev.self_consistency(["So the answer is (A).", "the answer is yes", "the answer is no"],
                             options=["yes", "no"]) == ("yes", 2)
  # an empty answer does not win over a real one
  assert ev.majority_vote(["", "", "cat"]) == ("cat", 1)
  assert ev.majority_vote(["", ""]) == ("", 2)
  # case and final punctuation do not split votes
  assert ev.majority_vote(["Paris.", "paris", "Rome"]) == ("Paris.", 2)


def test_exact_match_accuracy_and_token_f1():
  assert ev.exact_match(["Tuesday", "3 5 7"], ["tuesday.", "3 7 5"]) == {"exact_match": 50.0}
  assert ev.exact_match([], []) == {"exact_match": 0.0}
  with pytest.raises(ValueError, match="exact_match: 1 targets but 0 predictions"):
    ev.exact_match(["a"], [])
  assert ev.accuracy(["no"], ["No."]) == {"accuracy": 100.0}
  # 2 common tokens of 3 and 4: F1 = 2 * 2 / 7; articles count (unlike SQuAD's F1)
  assert ev.token_f1(["the cat sat", "x"], ["The cat sat down.", "y"])["token_f1"] == pytest.approx(
      100 * (6 / 7 + 0.0) / 2)
  # The catalogue names metrics; every name resolves to the one function.
  assert ev.resolve_metric("token_f1") is ev.token_f1
  with pytest.raises(ValueError, match="unknown metric 'bleu'"):
    ev.resolve_metric("bleu")
  # The CoT postprocessor is the evaluator's extraction: same answer, or the whole output.
  assert ev.cot_answer(b"Because 3. So the answer is (C).") == "(C)"
  assert ev.cot_answer("  just 7 ") == "just 7"


def test_squad_em_f1():
  got = ev.squad_em_f1([["the Eiffel Tower", "Eiffel Tower"], "1889"], ["Eiffel tower!", "in 1889 or 1890"])
  assert got["em"] == pytest.approx(50.0)
  # second row: 1 common token of 4 predicted, 1 gold -> P=1/4, R=1 -> F1 = 0.4
  assert got["f1"] == pytest.approx(100 * (1.0 + 0.4) / 2)
  assert ev.squad_em_f1(["a"], ["the"])["f1"] == 100.0  # both empty after normalisation


def test_normalized_average():
  assert ev.normalized_score(25.0, 25.0) == 0.0
  assert ev.normalized_score(100.0, 25.0) == 100.0
  assert ev.normalized_score(62.5, 25.0) == pytest.approx(50.0)
  avg = ev.normalized_average({"MMLU Direct": 62.5, "TyDiQA": 30.0}, {"MMLU Direct": 25.0})
  assert avg == pytest.approx((50.0 + 30.0) / 2)
  with pytest.raises(ValueError):
    ev.normalized_score(50.0, 100.0)


def test_eval_tasks_carry_their_records(monkeypatch):
  monkeypatch.setattr(ev, "_EVAL_TASKS", {})  # this test's records only, restored after
  # Suites record their tasks when registering them (tasks/eval_suites.py) ...
  info = ev.record_eval_task("test_evaluation_suite_task", suite="BBH", cot=True, answer="number")
  assert (info.column, info.numeric) == ("BBH CoT", True)
  assert ev.recorded_eval_task("test_evaluation_suite_task") == info
  with pytest.raises(ValueError, match="answer kind 'float'"):
    ev.record_eval_task("test_evaluation_bad", suite="BBH", answer="float")
  with pytest.raises(ValueError, match="suite 'GSM'"):
    ev.column_for("GSM", cot=False)
  # ... a FLAN task outside the suites is held out: CoT from its postprocessor, numbers from
  # its catalogue category (date arithmetic answers are dates, compared as text).
  from flan_jax.tasks import embedded  # noqa: F401  (registers the embedded families)
  infos = {n: evaluator.task_info(seqio.get_mixture_or_task(n))
           for n in ("embedded_date_arithmetic_zscot", "embedded_sort_numbers_zsopt", "embedded_arithmetic_fsnoopt")}
  assert infos["embedded_date_arithmetic_zscot"] == ev.EvalTaskInfo("Held-out", "Held-out CoT", "text", cot=True)
  assert infos["embedded_sort_numbers_zsopt"].column == "Held-out Direct"
  assert infos["embedded_arithmetic_fsnoopt"].answer == "number"


class _Answer:
  """A decoder that answers every prompt with one fixed text."""

  def __init__(self, vocab, text):
    self.ids = list(vocab.encode(text)) + [1]

  def decode(self, params, inputs, config, rng=0):
    rows = np.zeros((inputs.shape[0], config.max_decode_len), np.int32)
    rows[:, :len(self.ids)] = self.ids
    return type("Out", (), {"tokens": rows})


def _broken(targets, predictions):
  raise KeyError("needs a 'label' field")


def _register_task_with_a_broken_metric(name):
  from flan_jax.tasks import vocab as vocab_lib
  vocab = vocab_lib.default_vocabulary()
  seqio.TaskRegistry.add(
      name, source=seqio.FunctionDataSource(
          lambda split, shuffle_files=False, seed=None: tf.data.Dataset.from_tensor_slices(
              {"inputs": ["Is 2 > 1?", "Is 1 > 2?"], "targets": ["yes", "no"]}), splits=("validation",)),
      output_features={k: seqio.Feature(vocab, add_eos=True) for k in ("inputs", "targets")},
      preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
      postprocess_fn=ev.strip_text, metric_fns=[ev.exact_match, _broken])
  return vocab


def test_a_failing_task_metric_is_recorded_not_dropped(tmp_path):
  """A broken metric does not vanish: the result names it, the good metrics stand, the
  results are written with it, and raise_metric_failures names task and metric."""
  name = "test_evaluation_broken_metric"
  vocab = _register_task_with_a_broken_metric(name)
  try:
    run = evaluator.Evaluator(_Answer(vocab, "yes"), [name], config=evaluator.EvalConfig(
        max_examples=None, batch_size=2, input_length=32, score_targets=False))
    results = run.run(None, log=None)
  finally:
    seqio.TaskRegistry.remove(name)
  task = results["tasks"][name]
  assert task["metrics"]["task/exact_match"] == 50.0 and task["score"] == 50.0
  assert task["metric_failures"] == {"_broken": "KeyError: \"needs a 'label' field\""}
  assert results["metric_failures"] == {name: task["metric_failures"]}
  paths = eval_report.write_results(results, str(tmp_path), tensorboard=False)
  assert json.load(open(paths["json"]))["metric_failures"] == results["metric_failures"]
  with pytest.raises(evaluator.MetricError, match=f"task {name}: metric _broken failed \\(KeyError"):
    evaluator.raise_metric_failures(results, str(tmp_path))
  evaluator.raise_metric_failures(evaluator.summarize({}, step=1))  # nothing failed: no error


@pytest.mark.slow
def test_flan_jax_eval_exits_non_zero_naming_the_failed_metric(tmp_path, capsys):
  """`flan-jax eval` (an untrained tiny T5) writes its results, then fails in one line."""
  import gin
  from flan_jax import cli
  name, out = "test_evaluation_broken_metric_cli", tmp_path / "eval"
  _register_task_with_a_broken_metric(name)
  gin.clear_config()
  try:
    rc = cli.main(["eval", "--gin_file=gin/recipes/quickstart_eval.gin", "--gin_file=models/t5_1_1/tiny.gin",
                   "--gin.VOCAB_SIZE=2048", "--gin.evaluate.model_config=%MODEL_CONFIG",
                   "--gin.CHECKPOINT_PATH=None", f"--gin.OUTPUT_DIR={out}", f"--gin.EVAL_MIXTURES_OR_TASKS=['{name}']",
                   "--gin.BIGBENCH_TASKS=[]", "--gin.EVAL_MODE='generate'", "--gin.EVAL_BATCH_SIZE=2",
                   "--gin.EVAL_INPUT_LENGTH=16", "--gin.MAX_DECODE_LEN=4", "--gin.evaluate.score_targets=False"])
  finally:
    seqio.TaskRegistry.remove(name)
    gin.clear_config()
  err = capsys.readouterr().err
  assert rc == 2, err[-2000:]
  assert f"flan-jax eval: error: task {name}: metric _broken failed (KeyError" in err
  assert "Traceback" not in err
  saved = json.load(open(out / "results_init.json"))
  assert list(saved["metric_failures"][name]) == ["_broken"]
  assert "task/exact_match" in saved["tasks"][name]["metrics"]


def _task(column, score, baseline, suite="BBH"):
  return {"suite": suite, "column": column, "score": score, "random_baseline": baseline, "method": "greedy",
          "num_examples": 4, "metrics": {"accuracy": score}}


def test_summarize_and_reports(tmp_path):
  tasks = {"mmlu_a_zsopt": _task("MMLU Direct", 40.0, 25.0, "MMLU"),
           "mmlu_b_zsopt": _task("MMLU Direct", 60.0, 25.0, "MMLU"),
           "bbh_x": _task("BBH Direct", 50.0, 50.0),
           "tydiqa_goldp_en": _task("TyDiQA", 20.0, 0.0, "TyDiQA")}
  results = evaluator.summarize(tasks, step=100, name="run")
  assert list(results["columns"]) == ["MMLU Direct", "BBH Direct", "TyDiQA"]
  assert results["columns"]["MMLU Direct"] == 50.0
  assert results["normalized"]["BBH Direct"] == 0.0
  assert results["normalized_average"] == pytest.approx((100 * 25 / 75 + 0.0 + 20.0) / 3)
  paths = eval_report.write_results(results, str(tmp_path), tensorboard=False)
  assert json.load(open(paths["json"]))["step"] == 100
  table = open(paths["table"]).read()
  assert table.splitlines()[0] == "| Model | MMLU Direct | BBH Direct | TyDiQA | Norm. avg |"
  assert "| run @ 100 | 50.0 | 50.0 | 20.0 | 17.8 |" in table
  eval_report.write_results(evaluator.summarize(tasks, step=None, name="untrained"), str(tmp_path),
                            tensorboard=False)
  rows = [l for l in open(paths["table"]).read().splitlines() if l.startswith("| untrained") or l.startswith("| run")]
  assert [r.split(" |")[0] for r in rows] == ["| untrained", "| run @ 100"]


def test_bigbench_rows_render_options_block():
  rows = eval_suites._bigbench_rows({"examples": [{"input": "Is it sunny?", "target_scores": {"Yes": 0, "No": 1}},
                                         {"input": "Sort: b a", "target": ["a b"]}]})
  assert rows[0]["targets"] == "No" and ev.parse_options(rows[0]["inputs"]) == ["Yes", "No"]
  assert rows[1] == {"inputs": "Q: Sort: b a\nA:", "prefix": "", "shots": [], "query": "Q: Sort: b a\nA:",
                     "targets": "a b", "options": [], "answers": ["a b"]}
