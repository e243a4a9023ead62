"""MMLU, BBH, TyDiQA GoldP and MGSM: each built from small files in its real format."""
import csv
import json
import pathlib
import re

import numpy as np
import pytest
import seqio

from flan_jax import evaluator
from flan_jax.tasks import metrics
from flan_jax.tasks import eval_suites as es

SHARED_GSM8K = pathlib.Path(__file__).resolve().parents[2] / "shared/data/flan_cot/gsm8k_train.tsv"


def _examples(name, data_dir=None):
  return evaluator.load_examples(seqio.get_mixture_or_task(name), "validation", None)


def test_suite_sizes_and_mixtures():
  assert len(es.MMLU_SUBJECTS) == len(set(es.MMLU_SUBJECTS)) == 57
  assert len(es.BBH_TASKS) == 27 and len(es.BBH_TASK_GROUPS) == 23
  assert len(seqio.get_mixture_or_task("mmlu_5shot_direct").tasks) == 57
  assert len(seqio.get_mixture_or_task("mmlu_5shot_cot").tasks) == 57
  assert len(seqio.get_mixture_or_task("bbh_3shot_direct").tasks) == 27
  assert len(seqio.get_mixture_or_task("tydiqa_goldp_1shot").tasks) == 9
  assert len(seqio.get_mixture_or_task("mgsm_8shot_cot").tasks) == 11
  cols = {_info(n).column for n in ("mmlu_anatomy_5shot_direct", "mmlu_anatomy_5shot_cot",
                                            "bbh_snarks_3shot_direct", "bbh_snarks_3shot_cot",
                                            "tydiqa_goldp_swahili_1shot",
                                            "mgsm_sw_8shot_cot")}
  assert cols == {"MMLU Direct", "MMLU CoT", "BBH Direct", "BBH CoT", "TyDiQA", "MGSM"}
  # Recorded at registration, not read from the names.
  assert _info("mmlu_college_mathematics_5shot_direct").answer == "text"
  assert _info("mgsm_de_8shot_cot") == metrics.EvalTaskInfo("MGSM", "MGSM", "number", cot=True)
  assert _info("tydiqa_goldp_swahili_1shot").answer == "span"
  assert _info("bbh_object_counting_3shot_direct").answer == "number"
  assert _info("bbh_snarks_3shot_cot").cot and not _info("bbh_snarks_3shot_direct").cot


def _info(name):
  return evaluator.task_info(seqio.get_mixture_or_task(name))


def _write_mmlu(root, subject="anatomy", n_test=3):
  for split, n in (("dev", 5), ("test", n_test)):
    d = root / "mmlu" / "data" / split
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"{subject}_{split}.csv", "w", newline="") as f:
      w = csv.writer(f)
      for i in range(n):
        w.writerow([f'{split} question {i}, with "quotes"?', f"a{i}", f"b{i}", f"c{i}",
                    f"d{i}", "ABCD"[i % 4]])
  (root / "mmlu" / "mmlu-cot.json").write_text(json.dumps({
      subject: "The following are multiple choice questions (with answers) about anatomy.\n\n"
               "Q: Which bone? \n(A) x (B) y (C) z (D) w\nA: Let's think step by step. "
               "It is y. The answer is (B)."}))


def test_mmlu_from_the_csv_release(tmp_path):
  _write_mmlu(tmp_path)
  es.register_mmlu(tmp_path)
  try:
    direct = _examples("mmlu_anatomy_5shot_direct")
    assert len(direct) == 3
    ex = direct[1]
    assert ex.prompt.count("Answer: (") == 5           # five dev exemplars, answered
    assert all(f"dev question {i}" in ex.prompt for i in range(5))
    assert "test question 1" in ex.prompt and "test question 0" not in ex.prompt
    assert ex.prompt.endswith("(D) d1\nAnswer:")
    assert ex.target == "(B)" and ex.options == ["a1", "b1", "c1", "d1"]
    assert metrics.extract_answer("(B)", options=ex.options) == "b1"
    cot = _examples("mmlu_anatomy_5shot_cot")[0]
    assert "The answer is (B)." in cot.prompt and cot.prompt.endswith("Let's think step by step.")
    # A subject without files fails when built, naming the task and the file it wanted.
    with pytest.raises(FileNotFoundError, match=r"mmlu_virology_5shot_direct.*virology_test.csv"):
      _examples("mmlu_virology_5shot_direct")
  finally:
    es.register_mmlu()


BBH_PROMPT = """Answer questions about dates.

-----

Q: Today is 1/2/2000. What is tomorrow?
Options:
(A) 01/03/2000
(B) 01/01/2000
A: Let's think step by step.
Tomorrow is one day later, 01/03/2000. So the answer is (A).

Q: Today is 3/1/2000. What was yesterday?
Options:
(A) 02/28/2000
(B) 02/29/2000
A: Let's think step by step.
2000 is a leap year, so yesterday was 02/29/2000. So the answer is (B).

Q: Is 2001 a leap year?
Options:
(A) yes
(B) no
A: Let's think step by step.
2001 is not divisible by 4. So the answer is (B)."""


def test_bbh_curated_release(tmp_path):
  (tmp_path / "bbh" / "cot-prompts").mkdir(parents=True)
  (tmp_path / "bbh" / "cot-prompts" / "date_understanding.txt").write_text(BBH_PROMPT)
  (tmp_path / "bbh" / "date_understanding.json").write_text(json.dumps({"examples": [
      {"input": "Today is 5/5/2005. What is tomorrow?\nOptions:\n(A) 05/06/2005\n(B) 05/04/2005",
       "target": "(A)"}]}))
  es.register_bbh(tmp_path)
  try:
    assert "bbh_3shot_cot" in seqio.MixtureRegistry.names()
    desc, shots = es.parse_cot_prompt(BBH_PROMPT)
    assert desc == "Answer questions about dates." and len(shots) == 3
    assert shots[1][2] == "(B)" and shots[1][1].startswith("2000 is a leap year")
    direct = _examples("bbh_date_understanding_3shot_direct")[0]
    assert direct.prompt.count("\nA: (") == 3 and "step by step" not in direct.prompt
    assert direct.prompt.endswith("(B) 05/04/2005\nA:")
    assert direct.options == ["05/06/2005", "05/04/2005"] and direct.target == "(A)"
    cot = _examples("bbh_date_understanding_3shot_cot")[0]
    assert cot.prompt.count("So the answer is") == 3
    assert cot.prompt.endswith("A: Let's think step by step.")
    assert metrics.extract_answer("It is the 6th. So the answer is (A).",
                                     options=cot.options) == "05/06/2005"
  finally:
    es.register_bbh()


def _fake_bigbench(root):
  d = root / "date_understanding"
  d.mkdir(parents=True)
  examples = [{"input": f"Question {i}: what day?", "target_scores": {"Mon": int(i % 2 == 0),
                                                                      "Tue": int(i % 2 == 1)}}
              for i in range(40)]
  (d / "task.json").write_text(json.dumps({"name": "date_understanding", "examples": examples}))
  d = root / "word_sorting"
  d.mkdir()
  (d / "task.json").write_text(json.dumps({"examples": [
      {"input": f"Sort: pear apple {i}", "target": f"{i} apple pear"} for i in range(10)]}))
  return root


def test_bbh_offline_from_bigbench_json(tmp_path):
  root = _fake_bigbench(tmp_path / "benchmark_tasks")
  es.register_bbh(tmp_path / "no_bbh_here", offline=True, bigbench_dir=root)
  try:
    assert "bbh_zscot" in seqio.MixtureRegistry.names()
    shots, evaluated = es.bbh_offline_examples("date_understanding", root)
    assert len(shots) == 3 and len(evaluated) == 37
    assert not {q for q, _, _ in shots} & {q for q, _, _ in evaluated}
    direct = _examples("bbh_date_understanding_3shot_direct")
    assert len(direct) == 37
    ex = direct[0]
    assert ex.prompt.count("\nA: (") == 3 and ex.options == ["Mon", "Tue"]
    question = re.search(r"Question (\d+)", ex.prompt.rsplit("Q: ", 1)[1]).group(1)
    assert ex.target == ("(A)" if int(question) % 2 == 0 else "(B)")
    zs = _examples("bbh_word_sorting_zscot")[0]
    assert zs.prompt.startswith("Q: Sort:") and zs.prompt.endswith("Let's think step by step.")
    assert zs.options == []
    assert _info("bbh_word_sorting_zscot") == metrics.EvalTaskInfo("BBH", "BBH CoT", "text", cot=True)
  finally:
    es.register_bbh()


def test_generated_bbh_tasks_have_right_answers():
  for q, target, _ in es.generated_bbh_examples("boolean_expressions", 50):
    assert q.endswith(" is") and target == str(eval(q[:-3]))  # pylint: disable=eval-used
  for q, target, _ in es.generated_bbh_examples("multistep_arithmetic_two", 50):
    assert q.endswith(" =") and int(target) == eval(q[:-2])  # pylint: disable=eval-used
  for q, target, _ in es.generated_bbh_examples("web_of_lies", 50):
    # An independent solver: walk the statements keeping who tells the truth.
    sentences = re.findall(r"(\w+) (says (\w+) )?(tells the truth|lies)\.", q)
    truth = {}
    for speaker, says, about, claim in sentences:
      if not says:
        truth[speaker] = claim == "tells the truth"
      else:
        truth[speaker] = truth[about] == (claim == "tells the truth")
    asked = re.search(r"Does (\w+) tell the truth\?", q).group(1)
    assert target == ("Yes" if truth[asked] else "No")


def _squad(path, rows):
  path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [
      {"context": c, "qas": [{"id": f"{lang}-{i}", "question": q,
                              "answers": [{"text": a, "answer_start": c.find(a)} for a in ans]}]}
      for i, (lang, c, q, ans) in enumerate(rows)]}]}))


def test_tydiqa_goldp_one_shot(tmp_path):
  d = tmp_path / "tydiqa"
  d.mkdir()
  _squad(d / "tydiqa-goldp-v1.1-train.json", [
      ("english", "Paris is in France.", "Where is Paris?", ["France"]),
      ("finnish", "Helsinki on Suomessa.", "Missä Helsinki on?", ["Suomessa"])])
  _squad(d / "tydiqa-goldp-v1.1-dev.json", [
      ("finnish", "Turku on rannikolla.", "Missä Turku on?", ["rannikolla", "rannikolla."]),
      ("english", "Rome is in Italy.", "Where is Rome?", ["Italy"])])
  es.register_tydiqa(tmp_path)
  try:
    (ex,) = _examples("tydiqa_goldp_finnish_1shot")
    assert ex.prompt.startswith("Helsinki on Suomessa.\n\nQ: Missä Helsinki on?\n\nA: Suomessa")
    assert ex.prompt.endswith("Turku on rannikolla.\n\nQ: Missä Turku on?\n\nA:")
    assert "Paris" not in ex.prompt and ex.answers == ["rannikolla", "rannikolla."]
  finally:
    es.register_tydiqa()


@pytest.mark.skipif(not SHARED_GSM8K.is_file(), reason="needs ../shared/data/flan_cot")
def test_mgsm_with_english_cot_exemplars_from_the_real_gsm8k_tsv(tmp_path):
  (tmp_path / "cot").mkdir()
  (tmp_path / "cot" / "gsm8k_train.tsv").write_bytes(SHARED_GSM8K.read_bytes())
  (tmp_path / "mgsm").mkdir()
  (tmp_path / "mgsm" / "mgsm_de.tsv").write_text(
      "Anna hat 3 Äpfel und kauft 4 dazu. Wie viele hat sie?\t7\n"
      "Ben hat 10 Euro und gibt 2 aus. Wie viel bleibt?\t8\n")
  es.register_mgsm(tmp_path)
  try:
    exs = _examples("mgsm_de_8shot_cot")
    assert [e.target for e in exs] == ["7", "8"]
    p = exs[0].prompt
    assert p.count("So the answer is") == 8 and p.count("Q: ") == 9
    assert p.endswith("Wie viele hat sie?\nA: Let's think step by step.")
    first_q = SHARED_GSM8K.read_text().split("\t", 1)[0].replace("\\n", "\n")
    assert first_q in p
    assert metrics.extract_answer("3 + 4 = 7. So the answer is 7.", numeric=True) == "7"
    # Native exemplars take precedence over the English ones.
    (tmp_path / "mgsm" / "mgsm_de_exemplars.tsv").write_text("Frage?\tWeil.\t5\n")
    assert es.mgsm_exemplars("de", tmp_path) == [("Frage?", "Weil.", "5")]
  finally:
    es.register_mgsm()


class _EchoDecoder:
  """Decodes the gold target of each prompt: the evaluator must then score 100."""

  def __init__(self, vocab, answers):
    self.vocab, self.answers = vocab, answers

  def decode(self, params, inputs, config, rng=0):
    del params, rng
    rows = np.zeros((inputs.shape[0], config.max_decode_len), np.int32)
    for i, ids in enumerate(inputs):
      text = self.vocab.decode([int(t) for t in ids if t > 0])
      out = self.vocab.encode(self.answers.get(text, "nothing")) + [1]
      rows[i, :len(out)] = out[:config.max_decode_len]
    return type("Out", (), {"tokens": rows})


def test_evaluator_scores_suite_tasks_in_their_columns(tmp_path):
  _write_mmlu(tmp_path)
  es.register_mmlu(tmp_path)
  try:
    name = "mmlu_anatomy_5shot_direct"
    exs = _examples(name)
    vocab = seqio.get_mixture_or_task(name).output_features["inputs"].vocabulary
    decoder = _EchoDecoder(vocab, {vocab.decode(e.inputs[:-1]): e.target for e in exs})
    ev = evaluator.Evaluator(decoder, [name], config=evaluator.EvalConfig(
        max_examples=None, batch_size=4, input_length=512, score_targets=False))
    out = ev.run(None, log=None)
    assert out["tasks"][name]["score"] == 100.0
    assert out["columns"] == {"MMLU Direct": 100.0}
  finally:
    es.register_mmlu()


def test_paper_benchmarks_eval_recipe_names_registered_tasks():
  import gin
  from flan_jax import eval as eval_lib  # noqa: F401  (registers the configurables)
  from flan_jax import gin_utils
  gin_utils.parse([gin_utils.resolve_gin_file("recipes/eval_paper_benchmarks.gin")],
                  ["CHECKPOINT_PATH = None"])
  names = gin.query_parameter("%EVAL_MIXTURES_OR_TASKS")
  assert gin.query_parameter("%TASK_MODULES") == ["flan_jax.tasks.eval_suites"]
  tasks = evaluator.expand_tasks(names)
  assert len(tasks) == 57 + 57 + 27 + 27 + 9 + 11
  assert {_info(t).column for t in tasks} == {
      "MMLU Direct", "MMLU CoT", "BBH Direct", "BBH CoT", "TyDiQA", "MGSM"}
