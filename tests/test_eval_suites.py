"""MMLU, BBH, TyDiQA GoldP and MGSM: each built from small files in its real format."""
import csv
import json
import pathlib
import re

import numpy as np
import pytest
import seqio

from flan_jax.evaluation import eval_report
from flan_jax.evaluation import evaluator
from flan_jax.tasks import lookup
from flan_jax.tasks import eval_suites as es

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "eval_suites"


def _examples(name, data_dir=None, **kw):
  return evaluator.load_examples(seqio.get_mixture_or_task(name), "validation", None, **kw)


def test_suite_sizes_and_mixtures():
  assert len(es.MMLU_SUBJECTS) == len(set(es.MMLU_SUBJECTS)) == 57
  assert len(es.BBH_TASKS) == 27 and len(es.BBH_TASK_GROUPS) == 23
  assert len(seqio.get_mixture_or_task("mmlu_5shot_direct").tasks) == 57
  assert len(seqio.get_mixture_or_task("mmlu_5shot_cot").tasks) == 57
  assert len(seqio.get_mixture_or_task("bbh_3shot_direct").tasks) == 27
  assert len(seqio.get_mixture_or_task("bbh_3shot_cot").tasks) == 27
  assert len(seqio.get_mixture_or_task("bigbench_bbh_3shot_direct").tasks) == 27
  tydiqa = [t.name for t in seqio.get_mixture_or_task("tydiqa_goldp_1shot").tasks]
  assert len(tydiqa) == 8 and not any("english" in t for t in tydiqa)   # the paper's 8 languages
  mgsm = [t.name for t in seqio.get_mixture_or_task("mgsm_8shot_cot").tasks]
  assert len(mgsm) == 10 and "mgsm_en_8shot_cot" not in mgsm           # the benchmark's 10
  assert _info("mgsm_en_8shot_cot").column == "MGSM English"            # English: its own row
  cols = {_info(n).column for n in ("mmlu_anatomy_5shot_direct", "mmlu_anatomy_5shot_cot",
                                            "bbh_snarks_3shot_direct", "bbh_snarks_3shot_cot",
                                            "tydiqa_goldp_swahili_1shot",
                                            "mgsm_sw_8shot_cot")}
  assert cols == {"MMLU Direct", "MMLU CoT", "BBH Direct", "BBH CoT", "TyDiQA", "MGSM"}
  # Recorded at registration, not read from the names: each benchmark's own rule.
  assert _info("mmlu_college_mathematics_5shot_direct").scorer == "mmlu_letter"
  assert _info("mmlu_college_mathematics_5shot_cot").scorer == "mmlu_cot"
  assert _info("mmlu_anatomy_5shot_cot").weighted and not _info("bbh_snarks_3shot_cot").weighted
  de = _info("mgsm_de_8shot_cot")
  assert (de.suite, de.column, de.scorer, de.stops) == ("MGSM", "MGSM", "mgsm", ("Frage:",))
  assert de.answer_phrases == ("Die Antwort lautet", "Die Antwort ist")
  assert _info("tydiqa_goldp_swahili_1shot").scorer == "tydiqa"
  assert _info("bbh_snarks_3shot_cot").cot and not _info("bbh_snarks_3shot_direct").cot
  assert _info("bbh_snarks_3shot_cot").scorer == "bbh"
  rebuilt = _info("bigbench_bbh_snarks_3shot_direct")
  assert (rebuilt.suite, rebuilt.column) == ("BIG-bench BBH", "BIG-bench BBH Direct")
  assert not any(n.startswith("bigbench_bbh") and "cot" in n for n in seqio.TaskRegistry.names())


def _info(name):
  return evaluator.task_info(seqio.get_mixture_or_task(name))


def _write_mmlu(root, subject="anatomy", n_test=3, tag=""):
  for split, n in (("dev", 5), ("test", n_test)):
    d = root / "mmlu" / "data" / split
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"{subject}_{split}.csv", "w", newline="") as f:
      w = csv.writer(f)
      for i in range(n):
        w.writerow([f'{split} question {i}{tag}, with "quotes"?', f"a{i}", f"b{i}", f"c{i}",
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
    # hendrycks/test's evaluate_flan.py layout, character for character (its subject
    # formatting leaves two spaces after "about").
    header = "The following are multiple choice questions (with answers) about  anatomy.\n\n"
    shot0 = 'dev question 0, with "quotes"?\nA. a0\nB. b0\nC. c0\nD. d0\nAnswer: A\n\n'
    assert ex.prompt.startswith(header + shot0)
    assert ex.prompt.count("\nAnswer: ") == 5 and ex.exemplars == 5 and ex.dropped == 0
    assert ex.prompt.endswith('test question 1, with "quotes"?\nA. a1\nB. b1\nC. c1\nD. d1\nAnswer:')
    assert ex.target == "B" and ex.options == ["a1", "b1", "c1", "d1"]
    cot = _examples("mmlu_anatomy_5shot_cot")[0]
    assert cot.exemplars == 1 and "The answer is (B)." in cot.prompt
    assert cot.prompt.endswith("(D) d0\nA: Let's think step by step.") and cot.target == "(A)"
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
    desc, shots = es.parse_cot_prompt(BBH_PROMPT)
    assert desc == "Answer questions about dates." and len(shots) == 3
    assert shots[1][2] == "(B)" and shots[1][1].startswith("\n2000 is a leap year")
    direct = _examples("bbh_date_understanding_3shot_direct")[0]
    assert direct.prompt.count("\nA: (") == 3 and "step by step" not in direct.prompt
    assert direct.prompt.endswith("(B) 05/04/2005\nA:")
    assert direct.options == ["05/06/2005", "05/04/2005"] and direct.target == "(A)"
    cot = _examples("bbh_date_understanding_3shot_cot")[0]
    # The release's prompt verbatim, then the question.
    assert cot.prompt == "Answer questions about dates.\n\n" + BBH_PROMPT.split("-----", 1)[1].strip() + (
        "\n\nQ: Today is 5/5/2005. What is tomorrow?\nOptions:\n(A) 05/06/2005\n(B) 05/04/2005\n"
        "A: Let's think step by step.")
  finally:
    es.register_bbh()


@pytest.mark.parametrize("task", ["date_understanding", "sports_understanding"])
def test_bbh_cot_prompts_are_the_files_verbatim(task):
  """Each CoT prompt is the cot-prompts file's text (after its dashed header line) followed by
  the question, whatever whitespace the file puts after "Let's think step by step."."""
  es.register_bbh(FIXTURES)
  try:
    text = (FIXTURES / "bbh" / "cot-prompts" / f"{task}.txt").read_text()
    body = text.split("-----", 1)[1].strip()
    examples = json.loads((FIXTURES / "bbh" / f"{task}.json").read_text())["examples"]
    got = _examples(f"bbh_{task}_3shot_cot")
    assert [e.prompt for e in got] == [f"{body}\n\nQ: {x['input']}\nA: Let's think step by step." for x in examples]
    assert [e.target for e in got] == [x["target"] for x in examples]
  finally:
    es.register_bbh()


def _fake_bigbench(root):
  d = root / "date_understanding"
  d.mkdir(parents=True)
  examples = [{"input": f"Question {i}: what day?", "target_scores": {"Mon": int(i % 2 == 0),
                                                                      "Tue": int(i % 2 == 1),
                                                                      "Wed": 0, "Thu": 0}}
              for i in range(40)]
  (d / "task.json").write_text(json.dumps({"name": "date_understanding", "examples": examples}))
  d = root / "word_sorting"
  d.mkdir()
  (d / "task.json").write_text(json.dumps({"examples": [
      {"input": f"Sort: pear apple {i}", "target": f"{i} apple pear"} for i in range(10)]}))
  d = root / "navigate"
  d.mkdir()
  (d / "task.json").write_text(json.dumps({"examples": [
      {"input": f"Walk {i} steps and back. Are you home?", "target_scores": {"True": int(i % 3 == 0),
                                                                           "False": int(i % 3 != 0)}}
      for i in range(12)]}))
  d = root / "object_counting"
  d.mkdir()
  words = ["two", "three", "four", "five"]
  (d / "task.json").write_text(json.dumps({"examples": [
      {"input": f"I have {w} cats. How many animals?", "target": [w, str(i + 2)]} for i, w in enumerate(words * 2)]}))
  return root


def test_bigbench_bbh_is_reported_under_its_own_name_with_bbh_golds(tmp_path):
  root = _fake_bigbench(tmp_path / "benchmark_tasks")
  es.register_bbh(tmp_path / "no_bbh_here", bigbench_dir=root)
  try:
    shots, evaluated = es.bbh_offline_examples("date_understanding", root)
    assert len(shots) == 3 and len(evaluated) == 37
    assert not {q for q, _, _ in shots} & {q for q, _, _ in evaluated}
    direct = _examples("bigbench_bbh_date_understanding_3shot_direct")
    assert len(direct) == 37 and all(e.prompt.count("\nA: (") == 3 for e in direct)
    # Options in a seeded order: the gold letter varies, and names the right option.
    assert len({e.target for e in direct}) > 2
    for e in direct:
      question = int(re.search(r"Question (\d+)", e.prompt.rsplit("Q: ", 1)[1]).group(1))
      assert e.options["ABCD".index(e.target[1])] == ("Mon" if question % 2 == 0 else "Tue")
    nav = _examples("bigbench_bbh_navigate_3shot_direct")
    assert {e.target for e in nav} <= {"Yes", "No"} and nav[0].prompt.endswith("Options:\n- Yes\n- No\nA:")
    counts = _examples("bigbench_bbh_object_counting_3shot_direct")
    assert {e.target for e in counts} <= {"2", "3", "4", "5"}   # digits, as BBH writes counts
    assert _info("bigbench_bbh_word_sorting_3shot_direct").column == "BIG-bench BBH Direct"
    # The curated names fail when built without BBH's files, naming them and the alternative.
    with pytest.raises(FileNotFoundError, match=r"bbh_navigate_3shot_cot.*navigate.json.*bigbench_bbh_3shot_direct"):
      _examples("bbh_navigate_3shot_cot")
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
    assert "Paris" not in ex.prompt and ex.answers == ["rannikolla", "rannikolla."] and ex.exemplars == 1
    assert "tydiqa_goldp_english_1shot" not in seqio.TaskRegistry.names()
  finally:
    es.register_tydiqa()


def test_mgsm_renders_each_languages_native_exemplars_and_answer_phrase():
  es.register_mgsm(FIXTURES)
  try:
    exemplars = es.read_mgsm_exemplars(FIXTURES / "mgsm" / "exemplars.py")
    for lang in (*es.MGSM_LANGUAGES, es.MGSM_ENGLISH):
      exs = _examples(f"mgsm_{lang}_8shot_cot")
      assert [e.target for e in exs] == ["9", "7"]
      p = exs[0].prompt
      shots = exemplars[lang]
      assert p.startswith(f"{shots[0][0]}\n{shots[0][1]}\n\n") and exs[0].exemplars == 8
      assert all(f"{q}\n{a}\n\n" in p for q, a in shots)
      q_word = es.MGSM_QUESTION_WORDS[lang]
      assert p.count(q_word) == 9                                  # 8 exemplars and the question
      lead = es._LEAD.match(shots[0][1]).group(0).rstrip()          # "Schritt-für-Schritt-Antwort:"
      assert p.rsplit("\n\n", 1)[1].startswith(q_word) and p.endswith(f"\n{lead}")
      phrases = _info(f"mgsm_{lang}_8shot_cot").answer_phrases
      assert all(any(ph in a for ph in phrases) for _, a in shots)  # the phrase the scorer reads
    de = _examples("mgsm_de_8shot_cot")[0].prompt
    assert de.endswith("Frage: [de test] 4 + 5 = ?\nSchritt-für-Schritt-Antwort:")
    assert "Die Antwort lautet 5." in de and "So the answer is" not in de
  finally:
    es.register_mgsm()


def test_mgsm_exemplars_file_is_read_as_data_never_run(tmp_path):
  (tmp_path / "mgsm").mkdir()
  (tmp_path / "mgsm" / "exemplars.py").write_text("import os\nMGSM_EXEMPLARS = dict(de=os.system('true'))\n")
  with pytest.raises(ValueError, match=r"exemplars.py: MGSM_EXEMPLARS is not a plain literal"):
    es.read_mgsm_exemplars(tmp_path / "mgsm" / "exemplars.py")


class _OracleDecoder:
  """Answers each prompt with the text given for it, and finds the gold letter likeliest:
  the evaluator must then score 100 on every suite."""

  def __init__(self, vocab, outputs, golds=None):
    self.vocab, self.outputs, self.golds = vocab, outputs, golds or {}

  def _text(self, ids):
    return self.vocab.decode([int(t) for t in ids if t > 1])

  def decode(self, params, inputs, config, rng=0):
    del params, rng
    rows = np.zeros((inputs.shape[0], config.max_decode_len), np.int32)
    for i, ids in enumerate(inputs):
      out = self.vocab.encode(self.outputs.get(self._text(ids), "nothing")) + [1]
      rows[i, :len(out)] = out[:config.max_decode_len]
    return type("Out", (), {"tokens": rows})

  def score_options(self, params, inputs, options, batch_size=32):
    del params, batch_size
    return [np.array([0.0 if self.vocab.decode(o) == self.golds[self._text(x)] else -1.0 for o in opts])
            for x, opts in zip(inputs, options)]


def test_evaluator_scores_suite_tasks_by_their_rules_and_weights_mmlu_by_questions(tmp_path):
  _write_mmlu(tmp_path, n_test=3)
  _write_mmlu(tmp_path, subject="virology", n_test=9, tag=" on viruses")
  (tmp_path / "mmlu" / "mmlu-cot.json").write_text(json.dumps({s: "Q: x?\n(A) a (B) b (C) c (D) d\nA: Let's "
                                                                "think step by step. The answer is (A)."
                                                             for s in ("anatomy", "virology")}))
  es.register_mmlu(tmp_path)
  try:
    names = [f"mmlu_{s}_5shot_{k}" for s in ("anatomy", "virology") for k in ("direct", "cot")]
    vocab = seqio.get_mixture_or_task(names[0]).output_features["inputs"].vocabulary
    golds, outputs = {}, {}
    for n in names:
      for i, e in enumerate(_examples(n)):
        key = vocab.decode(e.inputs[:-1])
        golds[key] = e.target if n.endswith("direct") or i else "C"   # anatomy/virology: 1 direct error each
        right = i or "virology" in n
        outputs[key] = f"It is so. The answer is {e.target if right else '(D)'}.\n\nQ: next\nA: The answer is (D)."
    golds = {k: ("A" if v == "C" else v) for k, v in golds.items()}
    ev = evaluator.Evaluator(_OracleDecoder(vocab, outputs, golds), names, config=evaluator.EvalConfig(
        max_examples=None, batch_size=4, input_length=512, score_targets=False))
    out = ev.run(None, log=None)
    t = out["tasks"]
    assert t["mmlu_anatomy_5shot_direct"]["method"] == "letter_loglikelihood"
    assert t["mmlu_anatomy_5shot_cot"]["score"] == pytest.approx(200 / 3)  # the first of "answer is" counts
    assert t["mmlu_virology_5shot_cot"]["score"] == 100.0
    assert out["columns"]["MMLU CoT"] == pytest.approx(100 * 11 / 12)          # 11 of 12 questions
    assert out["unweighted_columns"]["MMLU CoT"] == pytest.approx((200 / 3 + 100) / 2)
    assert "MMLU CoT: 91.7 weighted by questions; 83.3 as the mean of its tasks" in eval_report.markdown_table([out])
  finally:
    es.register_mmlu()


def test_too_long_prompts_lose_whole_leading_exemplars_and_the_report_counts_them(tmp_path):
  _write_mmlu(tmp_path, n_test=2)
  es.register_mmlu(tmp_path)
  try:
    name = "mmlu_anatomy_5shot_direct"
    vocab = seqio.get_mixture_or_task(name).output_features["inputs"].vocabulary
    full = _examples(name)[0]
    header = es.mmlu_header("anatomy")
    query = full.prompt[full.prompt.rindex("Answer: ") + len("Answer: E\n\n"):]
    assert query.startswith("test question 0")
    limit = len(vocab.encode(header + query)) + 1 + 2 * len(vocab.encode("dev question 0, with \"quotes\"?")) + 20
    fitted = _examples(name, input_length=limit)[0]
    assert 0 < fitted.dropped < 5 and not fitted.truncated and len(fitted.inputs) <= limit
    assert fitted.prompt.startswith(header) and fitted.prompt.endswith(query)
    kept = [f"dev question {i}," in fitted.prompt for i in range(5)]
    assert kept == [False] * fitted.dropped + [True] * (5 - fitted.dropped)     # the leading ones went
    assert fitted.inputs == vocab.encode(fitted.prompt) + [1]                     # ids = encoding of the text
    trailing = _examples(name, input_length=limit, drop="trailing")[0]
    assert trailing.dropped == fitted.dropped and "dev question 0," in trailing.prompt
    tiny = _examples(name, input_length=8)[0]
    assert tiny.truncated and tiny.dropped == 5 and len(tiny.inputs) == 8 and tiny.inputs[-1] == 1
    ev = evaluator.Evaluator(_OracleDecoder(vocab, {}, {vocab.decode(e.inputs[:-1]): e.target for e in _examples(name, input_length=limit)}),
                             [name], config=evaluator.EvalConfig(max_examples=None, batch_size=2, input_length=limit,
                                                                 score_targets=False))
    out = ev.run(None, log=None)
    assert out["tasks"][name]["fitting"]["lost_exemplars"] == 2
    assert out["fitting"]["MMLU"].startswith(f"MMLU: 2 prompts at input length {limit}: 2 lost whole exemplars")
    assert out["fitting"]["MMLU"] in eval_report.markdown_table([out])
  finally:
    es.register_mmlu()


def test_paper_benchmarks_eval_recipe_names_registered_tasks():
  import gin
  from flan_jax.evaluation import evaluate as eval_lib  # noqa: F401  (registers the configurables)
  from flan_jax.runtime import gin_utils
  gin_utils.parse([gin_utils.resolve_gin_file("recipes/eval_paper_benchmarks.gin")],
                  ["CHECKPOINT_PATH = None"])
  names = gin.query_parameter("%EVAL_MIXTURES_OR_TASKS")
  assert gin.query_parameter("%TASK_MODULES") == ["flan_jax.tasks.eval_suites"]
  assert gin.query_parameter("%SELF_CONSISTENCY") == 40 and gin.query_parameter("%SC_TEMPERATURE") == 0.7
  tasks = lookup.expand_tasks(names)
  assert len(tasks) == 57 + 57 + 27 + 27 + 8 + 10 + 1
  assert {_info(t).column for t in tasks} == {
      "MMLU Direct", "MMLU CoT", "BBH Direct", "BBH CoT", "TyDiQA", "MGSM", "MGSM English"}
