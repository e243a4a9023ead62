"""Answer extraction, self-consistency, metrics and the normalised average, on hand-written outputs."""
import json

import pytest

from flan_jax import evaluation as ev


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


def test_exact_match_and_accuracies():
  assert ev.exact_match(["Tuesday", "3 5 7"], ["tuesday.", "3 7 5"]) == 50.0
  assert ev.exact_match([], []) == 0.0
  with pytest.raises(ValueError):
    ev.exact_match(["a"], [])
  assert ev.multiple_choice_accuracy(["no", "blue"], ["(B)", "A"], [["yes", "no"], ["blue", "red"]]) == 100.0
  assert ev.cot_accuracy(["x. So the answer is 12.", "So the answer is 3."],
                         ["so 12 in total. So the answer is 12.", "Maybe 4"], numeric=True) == 50.0


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


def test_columns_of_task_names():
  assert ev.column_of("mmlu_abstract_algebra_zsopt") == "MMLU Direct"
  assert ev.column_of("mmlu_abstract_algebra_fscot") == "MMLU CoT"
  assert ev.column_of("bbh_date_understanding_cot") == "BBH CoT"
  assert ev.column_of("bbh_bigbench_navigate") == "BBH Direct"
  assert ev.column_of("tydiqa_goldp_sw") == "TyDiQA"
  assert ev.column_of("mgsm_de_fscot") == "MGSM"
  assert ev.column_of("embedded_date_arithmetic_zscot") == "Held-out CoT"
  assert ev.is_numeric_task("mgsm_de_fscot") and not ev.is_numeric_task("embedded_sort_numbers_zsopt")


def _task(column, score, baseline, suite="BBH"):
  return {"suite": suite, "column": column, "score": score, "random_baseline": baseline, "method": "greedy",
          "num_examples": 4, "metrics": {"accuracy": score}}


def test_summarize_and_reports(tmp_path):
  tasks = {"mmlu_a_zsopt": _task("MMLU Direct", 40.0, 25.0, "MMLU"),
           "mmlu_b_zsopt": _task("MMLU Direct", 60.0, 25.0, "MMLU"),
           "bbh_x": _task("BBH Direct", 50.0, 50.0),
           "tydiqa_goldp_en": _task("TyDiQA", 20.0, 0.0, "TyDiQA")}
  results = ev.summarize(tasks, step=100, name="run")
  assert list(results["columns"]) == ["MMLU Direct", "BBH Direct", "TyDiQA"]
  assert results["columns"]["MMLU Direct"] == 50.0
  assert results["normalized"]["BBH Direct"] == 0.0
  assert results["normalized_average"] == pytest.approx((100 * 25 / 75 + 0.0 + 20.0) / 3)
  paths = ev.write_results(results, str(tmp_path), tensorboard=False)
  assert json.load(open(paths["json"]))["step"] == 100
  table = open(paths["table"]).read()
  assert table.splitlines()[0] == "| Model | MMLU Direct | BBH Direct | TyDiQA | Norm. avg |"
  assert "| run @ 100 | 50.0 | 50.0 | 20.0 | 17.8 |" in table
  ev.write_results(ev.summarize(tasks, step=None, name="untrained"), str(tmp_path), tensorboard=False)
  rows = [l for l in open(paths["table"]).read().splitlines() if l.startswith("| untrained") or l.startswith("| run")]
  assert [r.split(" |")[0] for r in rows] == ["| untrained", "| run @ 100"]


def test_bigbench_rows_render_options_block():
  rows = ev._bigbench_rows({"examples": [{"input": "Is it sunny?", "target_scores": {"Yes": 0, "No": 1}},
                                         {"input": "Sort: b a", "target": ["a b"]}]})
  assert rows[0]["targets"] == "No" and ev.parse_options(rows[0]["inputs"]) == ["Yes", "No"]
  assert rows[1] == {"inputs": "Q: Sort: b a\nA:", "targets": "a b", "options": []}
