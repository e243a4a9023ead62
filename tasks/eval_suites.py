"""The paper's held-out benchmarks as seqio tasks: MMLU, BBH, TyDiQA GoldP and MGSM.

  from flan_jax.tasks import eval_suites
  eval_suites.register_all()            # or register_mmlu() / register_bbh() / ...
  flan-jax eval --gin.EVAL_TASKS="['mmlu_5shot_direct', 'bbh_3shot_cot']" ...

Every task has one split, "validation", holding the examples the paper reports on. Each
example is a few-shot prompt kept in its parts, so that the evaluator can fit it to the
input length by dropping whole exemplars: `prefix` (the task's header), `shots` (one
string per exemplar, each with its trailing separator) and `query`; `inputs` is their
concatenation. Besides: `targets`, `options` (answer options, for letter answers) and
`answers` (all gold answers; TyDiQA). Prompts are text: the evaluator tokenizes them with
the evaluated checkpoint's vocabulary.

Each task records, when registered, its suite, its column of the paper's table and the
benchmark's own answer rule (`metrics.record_eval_task`, `tasks/scoring.py`).

| suite  | tasks                              | prompt (as the reference lays it out)         | scored (scoring.py) | data (under the data dir) |
|--------|------------------------------------|-----------------------------------------------|---------------------|---------------------------|
| MMLU   | mmlu_{subject}_5shot_direct        | hendrycks/test: 5 dev exemplars "A. x ... Answer: B" | likeliest letter A-D; question-weighted mean | mmlu/{dev,test}/{subject}_{split}.csv |
| MMLU   | mmlu_{subject}_5shot_cot           | the subject's CoT prompt of flan-2's mmlu-cot.json | letter after "answer is"; question-weighted | mmlu/mmlu-cot.json |
| BBH    | bbh_{task}_3shot_{direct,cot}      | the BBH release's cot-prompts, 3 exemplars    | BBH exact match     | bbh/{task}.json, bbh/cot-prompts/{task}.txt |
| TyDiQA | tydiqa_goldp_{lang}_1shot (8 languages, not English) | 1 train exemplar, same language | SQuAD EM (F1 beside), first line | tydiqa/tydiqa-goldp-v1.1-{train,dev}.json |
| MGSM   | mgsm_{lang}_8shot_cot (10 languages); mgsm_en_8shot_cot on its own row | the language's 8 native exemplars (url-nlp/mgsm exemplars.py) | number after the language's answer phrase | mgsm/mgsm_{lang}.tsv, mgsm/exemplars.py |
| BIG-bench BBH | bigbench_bbh_{task}_3shot_direct | BBH's 27 tasks rebuilt from BIG-bench's task files, direct only | BBH exact match | bigbench/benchmark_tasks/ (`flan-jax data prepare bigbench`), else an installed `bigbench` |

Mixtures (seqio, for `flan-jax eval`): mmlu_5shot_direct, mmlu_5shot_cot, bbh_3shot_direct,
bbh_3shot_cot, tydiqa_goldp_1shot, mgsm_8shot_cot (10 languages), bigbench_bbh_3shot_direct.
Registration reads no data; a task whose files are missing fails when it is evaluated,
naming the file it looked for. NIv2 tasks that overlap MMLU are kept out of training by
`catalogue.niv2_keep`.

BIG-bench BBH: where the curated BBH files cannot be fetched, BBH's 27 task files are
rebuilt from BIG-bench's own tasks (the source BBH was drawn from): a seeded shuffle, the
first 3 examples as exemplars, the next 250 evaluated. Golds are written as BBH writes
them: letters for multiple choice with the options in a seeded order (so the gold is not
always (A)), Yes/No, yes/no or valid/invalid as words where BBH uses words, counts as
digits. Three BBH tasks are programs in BIG-bench (boolean_expressions,
multistep_arithmetic_two, web_of_lies); their examples are generated here in BBH's format.
These are not BBH's examples, so they are reported under their own name, and there is no
CoT form (no rationales).
"""
from __future__ import annotations

import csv
import importlib.util
import json
import pathlib
import random
import re
from collections.abc import Sequence

from flan_jax.tasks import api
from flan_jax.tasks import metrics
from flan_jax.tasks import scoring
from flan_jax.tasks import storage
from flan_jax.tasks import templates
from flan_jax.tasks.collections import catalogue
from flan_jax.tasks.collections import readers

MMLU_SUBJECTS = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge",
    "college_biology", "college_chemistry", "college_computer_science", "college_mathematics",
    "college_medicine", "college_physics", "computer_security", "conceptual_physics",
    "econometrics", "electrical_engineering", "elementary_mathematics", "formal_logic",
    "global_facts", "high_school_biology", "high_school_chemistry",
    "high_school_computer_science", "high_school_european_history", "high_school_geography",
    "high_school_government_and_politics", "high_school_macroeconomics",
    "high_school_mathematics", "high_school_microeconomics", "high_school_physics",
    "high_school_psychology", "high_school_statistics", "high_school_us_history",
    "high_school_world_history", "human_aging", "human_sexuality", "international_law",
    "jurisprudence", "logical_fallacies", "machine_learning", "management", "marketing",
    "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition",
    "philosophy", "prehistory", "professional_accounting", "professional_law",
    "professional_medicine", "professional_psychology", "public_relations",
    "security_studies", "sociology", "us_foreign_policy", "virology", "world_religions")

# BBH: 23 tasks in 27 files (three sizes of logical_deduction and tracking_shuffled_objects).
# Value: the BIG-bench source (directory[/subtask]) for the offline build, or None where
# BIG-bench's task is a program (generated here instead).
BBH_TASKS = {
    "boolean_expressions": None,
    "causal_judgement": "causal_judgment",
    "date_understanding": "date_understanding",
    "disambiguation_qa": "disambiguation_qa",
    "dyck_languages": "dyck_languages",
    "formal_fallacies": "formal_fallacies_syllogisms_negation",
    "geometric_shapes": "geometric_shapes",
    "hyperbaton": "hyperbaton",
    "logical_deduction_five_objects": "logical_deduction/five_objects",
    "logical_deduction_seven_objects": "logical_deduction/seven_objects",
    "logical_deduction_three_objects": "logical_deduction/three_objects",
    "movie_recommendation": "movie_recommendation",
    "multistep_arithmetic_two": None,
    "navigate": "navigate",
    "object_counting": "object_counting",
    "penguins_in_a_table": "penguins_in_a_table",
    "reasoning_about_colored_objects": "reasoning_about_colored_objects",
    "ruin_names": "ruin_names",
    "salient_translation_error_detection": "salient_translation_error_detection",
    "snarks": "snarks",
    "sports_understanding": "sports_understanding",
    "temporal_sequences": "temporal_sequences",
    "tracking_shuffled_objects_five_objects": "tracking_shuffled_objects/five_objects",
    "tracking_shuffled_objects_seven_objects": "tracking_shuffled_objects/seven_objects",
    "tracking_shuffled_objects_three_objects": "tracking_shuffled_objects/three_objects",
    "web_of_lies": None,
    "word_sorting": "word_sorting",
}
# BBH tasks whose answers are numbers (lenient scoring compares them as numbers).
BBH_NUMERIC_TASKS = frozenset({"multistep_arithmetic_two", "object_counting"})
# BBH tasks whose golds are words, as the BBH release writes them (positive, negative), and
# whether BBH's inputs list them as "Options:" lines.
BBH_WORD_ANSWERS = {"causal_judgement": (("Yes", "No"), True), "navigate": (("Yes", "No"), True),
                    "formal_fallacies": (("valid", "invalid"), True),
                    "sports_understanding": (("yes", "no"), False),
                    "web_of_lies": (("Yes", "No"), False)}
BBH_TASK_GROUPS = sorted({re.sub(r"_(three|five|seven)_objects$", "", t) for t in BBH_TASKS})
BBH_MAX_EXAMPLES = 250
# TyDiQA GoldP as the paper evaluates it: the eight non-English languages.
TYDIQA_LANGUAGES = ("arabic", "bengali", "finnish", "indonesian", "korean", "russian", "swahili",
                    "telugu")
# MGSM's ten languages; English (the GSM8K originals) is evaluated on its own row.
MGSM_LANGUAGES = ("bn", "de", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")
MGSM_ENGLISH = "en"
# Each language's phrase before the final number in its native exemplars (url-nlp/mgsm);
# German's exemplars use two.
MGSM_ANSWER_PHRASES = {
    "bn": ("উত্তর হল",), "de": ("Die Antwort lautet", "Die Antwort ist"), "en": ("The answer is",),
    "es": ("La respuesta es",), "fr": ("La réponse est",), "ja": ("答えは",), "ru": ("Ответ —",),
    "sw": ("Jibu ni",), "te": ("సమాధానం",), "th": ("คำตอบคือ",), "zh": ("答案是",)}
# Each language's question word (the exemplars' "q" opens with it): a model that runs on
# into a new question is read up to it.
MGSM_QUESTION_WORDS = {
    "bn": "প্রশ্ন:", "de": "Frage:", "en": "Question:", "es": "Pregunta:", "fr": "Question :",
    "ja": "問題：", "ru": "Задача:", "sw": "Swali:", "te": "ప్రశ్న:", "th": "โจทย์:", "zh": "问题："}
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
COT_TRIGGER = "Let's think step by step."

Row = dict  # {"inputs", "prefix", "shots", "query", "targets", "options", "answers"}


def _need(path: pathlib.Path, task: str, hint: str) -> pathlib.Path:
  if not path.is_file():
    raise readers.missing_data(task, path, hint)
  return path


def _row(prefix: str, shots: Sequence[str], query: str, targets: str, options=(), answers=()) -> Row:
  """One example: its prompt in parts (`inputs` = prefix + shots + query) and its golds."""
  shots = list(shots)
  return {"inputs": prefix + "".join(shots) + query, "prefix": prefix, "shots": shots, "query": query,
          "targets": targets, "options": list(options), "answers": list(answers) or [targets]}


def register_task(name: str, rows, *, suite: str, cot: bool = False, answer: str = "text",
                  vocabulary=None, **how) -> str:
  """Registers one evaluation task (`api.register_eval_task`) and records how it is scored:
  its suite, column (from suite and `cot`, or `column=`), answer kind and the benchmark's
  rule (`scorer=`, `answer_phrases=`, `stops=`, `weighted=`: `metrics.EvalTaskInfo`)."""
  metrics.record_eval_task(name, suite=suite, cot=cot, answer=answer, **how)
  return api.register_eval_task(name, rows, vocabulary=vocabulary)


def _lettered(options: Sequence[str]) -> str:
  return "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))


def _root(data_dir, suite: str) -> pathlib.Path:
  return catalogue.data_dir(data_dir) / suite


def _first_file(*candidates: pathlib.Path) -> pathlib.Path:
  """The first candidate that exists, else the first (for the missing-data error)."""
  return next((p for p in candidates if p.is_file()), candidates[0])


# ---------------------------------------------------------------------------------------
# MMLU: the original CSV release (question, A, B, C, D, answer letter; no header).


def _mmlu_csv(root: pathlib.Path, subject: str, split: str, task: str) -> list[list[str]]:
  path = _first_file(root / split / f"{subject}_{split}.csv",
                     root / "data" / split / f"{subject}_{split}.csv")
  path = _need(path, task, "unpack the MMLU release (data/{dev,val,test}/*.csv) into "
               f"{root} (`flan-jax data prepare mmlu`)")
  with storage.open(path, newline="") as f:
    rows = [r for r in csv.reader(f) if r]
  for i, r in enumerate(rows):
    if len(r) != 6 or r[5].strip() not in "ABCD":
      raise ValueError(f"{path}:{i + 1}: expected 6 columns (question, A, B, C, D, answer "
                       f"letter), got {r[:7]}")
  return rows


def _mmlu_example(r: list[str], answered: bool) -> str:
  """One question as hendrycks/test's evaluate_flan.py lays it out: the question, "A. x"
  lines, "Answer:" and, for an exemplar, " B" and a blank line."""
  text = r[0] + "".join(f"\n{LETTERS[j]}. {o}" for j, o in enumerate(r[1:5])) + "\nAnswer:"
  return text + f" {r[5].strip()}\n\n" if answered else text


def mmlu_header(subject: str) -> str:
  """hendrycks/test's header; its subject formatting puts a space before each word, so the
  header reads "about  high school biology." with two spaces."""
  return ("The following are multiple choice questions (with answers) about"
          f" {''.join(' ' + w for w in subject.split('_'))}.\n\n")


def _mmlu_question_inline(r: list[str]) -> str:
  """The question with its options on one line, "(A) x (B) y ...", as the exemplars of
  the MMLU CoT prompts (mmlu-cot.json) write them."""
  return f"{r[0].strip()}\n" + " ".join(f"({LETTERS[i]}) {o.strip()}"
                                       for i, o in enumerate(r[1:5]))


def split_fewshot_prompt(text: str) -> tuple[str, list[str]]:
  """A few-shot prompt of "Q: ... A: ..." blocks separated by blank lines -> (header, one
  string per exemplar), each with the blank line that follows it."""
  blocks = [b for b in re.split(r"\n\n(?=Q: )", text.strip()) if b.strip()]
  header = ""
  if blocks and not blocks[0].startswith("Q: "):
    header = blocks.pop(0).rstrip() + "\n\n"
  return header, [b.rstrip() + "\n\n" for b in blocks]


def mmlu_rows(subject: str, cot: bool, data_dir=None, num_shots: int = 5) -> list[Row]:
  root = _root(data_dir, "mmlu")
  task = f"mmlu_{subject}_{num_shots}shot_{'cot' if cot else 'direct'}"
  test = _mmlu_csv(root, subject, "test", task)
  if cot:
    path = _need(root / "mmlu-cot.json", task, "it holds the few-shot CoT prompt of each subject "
                 "(`flan-jax data prepare mmlu` fetches it from the flan-2 repository)")
    prompts = json.loads(path.read_text(encoding="utf-8"))
    if subject not in prompts:
      raise ValueError(f"task {task!r}: {path} has no prompt for {subject!r}")
    prefix, shots = split_fewshot_prompt(prompts[subject])
  else:
    prefix = mmlu_header(subject)
    shots = [_mmlu_example(r, answered=True) for r in _mmlu_csv(root, subject, "dev", task)[:num_shots]]
  out = []
  for r in test:
    options = [o.strip() for o in r[1:5]]
    if cot:
      query, target = f"Q: {_mmlu_question_inline(r)}\nA: {COT_TRIGGER}", f"({r[5].strip()})"
    else:
      query, target = _mmlu_example(r, answered=False), r[5].strip()
    out.append(_row(prefix, shots, query, target, options))
  return out


def register_mmlu(data_dir=None) -> list[str]:
  names = {"direct": [], "cot": []}
  for subject in MMLU_SUBJECTS:
    for kind in names:
      cot = kind == "cot"
      names[kind].append(register_task(
          f"mmlu_{subject}_5shot_{kind}", lambda s=subject, c=cot: mmlu_rows(s, c, data_dir),
          suite="MMLU", cot=cot, scorer="mmlu_cot" if cot else "mmlu_letter", weighted=True))
  for kind, tasks in names.items():
    api.register_mixture(f"mmlu_5shot_{kind}", tasks, default_rate=1.0)
  return names["direct"] + names["cot"]


# ---------------------------------------------------------------------------------------
# BBH: the curated release ({"examples": [{"input", "target"}]} + cot-prompts/*.txt).

_BBH_OPTIONS = re.compile(r"^\(([A-Z])\)\s*(.*)$")


def bbh_options(text: str) -> list[str]:
  """The "(A) ..." lines of a BBH input, as option texts in letter order."""
  found = [m.groups() for m in map(_BBH_OPTIONS.match, text.splitlines()) if m]
  return [t.strip() for _, t in found]


def parse_cot_prompt(text: str) -> tuple[str, list[tuple[str, str, str]]]:
  """A BBH cot-prompts file -> (task description, [(question, rationale, answer)]).

  The rationale keeps the release's layout: the whitespace between "Let's think step by
  step." and its first word (a line break in most files, a space in some), its line
  breaks, and the space or line break before "So the answer is"."""
  description = ""
  if "-----" in text:  # a header (description, canary) above a dashed line
    head, text = text.split("-----", 1)
    description = head.strip()
  blocks = [b.strip() for b in re.split(r"\n\s*\n(?=Q: )", text.strip()) if b.strip()]
  shots = []
  for b in blocks:
    if not b.startswith("Q: "):
      description = b
      continue
    q, _, a = b[3:].partition("\nA: ")
    a = a.strip()
    if a.startswith(COT_TRIGGER):
      a = a[len(COT_TRIGGER):]
    rationale, _, answer = a.rpartition("So the answer is ")
    shots.append((q.strip(), rationale, answer.strip().rstrip(".")))
  return description, shots


def _bbh_parts(description: str, shots, query: str, cot: bool) -> tuple[str, list[str], str]:
  """(prefix, exemplars, query) of a BBH prompt laid out as the release's cot-prompts files
  (blocks separated by blank lines; CoT exemplars answer "A: Let's think step by step."
  then the rationale)."""
  prefix = f"{description}\n\n" if description else ""
  blocks = []
  for q, rationale, answer in shots:
    if cot:
      sep = "" if not rationale or rationale[-1].isspace() else " "
      lead = rationale if rationale[:1].isspace() else f" {rationale}" if rationale else ""
      a = f"{COT_TRIGGER}{lead}{sep}So the answer is {answer}."
    else:
      a = answer
    blocks.append(f"Q: {q}\nA: {a}\n\n")
  query = f"Q: {query}\nA:"
  return prefix, blocks, (f"{query} {COT_TRIGGER}" if cot else query)


def bbh_rows(task: str, cot: bool, data_dir=None) -> list[Row]:
  root = _root(data_dir, "bbh")
  name = f"bbh_{task}_3shot_{'cot' if cot else 'direct'}"
  hint = ("unpack the BBH release (bbh/*.json, cot-prompts/*.txt) there (`flan-jax data prepare "
          "bbh`); without it, bigbench_bbh_3shot_direct rebuilds BBH's tasks from BIG-bench")
  path = _first_file(root / f"{task}.json", root / "bbh" / f"{task}.json")
  examples = json.loads(_need(path, name, hint).read_text(encoding="utf-8"))["examples"]
  prompt = _need(root / "cot-prompts" / f"{task}.txt", name, hint)
  description, shots = parse_cot_prompt(prompt.read_text(encoding="utf-8"))
  if not shots:
    raise ValueError(f"task {name!r}: no 'Q: ... A: ...' exemplars in {prompt}")
  return [_row(*_bbh_parts(description, shots, ex["input"], cot), ex["target"],
               bbh_options(ex["input"])) for ex in examples]


# Offline BBH from BIG-bench's task files.


def bigbench_root(data_dir=None) -> pathlib.Path | None:
  """BIG-bench's `benchmark_tasks` directory: `<data dir>/bigbench/benchmark_tasks` as
  `flan-jax data prepare bigbench` writes it, else that of an installed `bigbench` package,
  else None."""
  prepared = catalogue.data_dir(data_dir) / "bigbench" / "benchmark_tasks"
  if prepared.is_dir():
    return prepared
  try:
    spec = importlib.util.find_spec("bigbench")
  except (ImportError, ValueError):
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "benchmark_tasks"
  return path if path.is_dir() else None


def bigbench_json_examples(task_json: dict) -> list[tuple[str, str, list[str]]]:
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


_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
_POSITIVE = {"yes", "true", "plausible", "valid"}


def bigbench_examples(task_json: dict, task: str = "", seed: int = 0) -> list[tuple[str, str, list[str]]]:
  """BIG-bench JSON examples -> (question, gold, options) with golds as BBH writes them:
  multiple-choice questions list "Options:" with letters, in a seeded order, and their gold
  is the letter; the tasks of `BBH_WORD_ANSWERS` answer with BBH's words; counts are digits."""
  rng = random.Random(f"options:{task}:{seed}")
  out = []
  for question, target, options in bigbench_json_examples(task_json):
    if task in BBH_WORD_ANSWERS and options:
      (yes, no), listed = BBH_WORD_ANSWERS[task]
      gold = yes if target.strip().lower() in _POSITIVE else no
      out.append((f"{question}\nOptions:\n- {yes}\n- {no}" if listed else question, gold, []))
    elif not options or len(options) > len(LETTERS):  # e.g. dyck_languages: free-form in BBH
      target = _NUMBER_WORDS.get(target.strip().lower(), target)
      out.append((question, target, []))
    else:
      options = list(options)
      rng.shuffle(options)
      out.append((f"{question}\nOptions:\n{_lettered(options)}",
                  f"({LETTERS[options.index(target)]})", options))
  return out


def _boolean_expression(rng: random.Random, depth: int = 2) -> str:
  if depth == 0:
    return rng.choice(["True", "False"])
  kind = rng.random()
  if kind < 0.25:
    return f"not {_boolean_expression(rng, depth - 1)}"
  a, b = _boolean_expression(rng, depth - 1), _boolean_expression(rng, depth - 1)
  op = rng.choice(["and", "or"])
  return f"( {a} {op} {b} )" if rng.random() < 0.4 else f"{a} {op} {b}"


def _arith_term(rng: random.Random) -> str:
  nums = [rng.randint(-9, 9) for _ in range(4)]
  ops = [rng.choice("+-*") for _ in range(3)]
  return "(" + " ".join(f"{n} {o}" for n, o in zip(nums, ops)) + f" {nums[-1]})"


_NAMES = ("Alice", "Bob", "Carol", "Dan", "Erin", "Fidel", "Gwen", "Hugo", "Ines", "Jamal",
          "Kira", "Leo", "Mona", "Nils", "Olga", "Pablo")


def generated_bbh_examples(task: str, n: int, seed: int = 0) -> list[tuple[str, str, list[str]]]:
  """BBH-format examples of the three tasks BIG-bench defines as programs."""
  rng = random.Random(f"{task}:{seed}")
  out = []
  for _ in range(n):
    if task == "boolean_expressions":
      expr = _boolean_expression(rng)
      while len(expr.split()) > 11 or len(expr.split()) < 5:
        expr = _boolean_expression(rng)
      out.append((f"{expr} is", str(eval(expr)), []))  # pylint: disable=eval-used
    elif task == "multistep_arithmetic_two":
      a, b = _arith_term(rng), _arith_term(rng)
      op = rng.choice("+-*")
      expr = f"({a} {op} {b})"
      out.append((f"{expr} =", str(eval(expr)), []))  # pylint: disable=eval-used
    elif task == "web_of_lies":
      people = rng.sample(_NAMES, 5)
      truthful = rng.random() < 0.5
      lines = [f"{people[0]} {'tells the truth' if truthful else 'lies'}."]
      for prev, person in zip(people, people[1:]):
        says_truth = rng.random() < 0.5
        lines.append(f"{person} says {prev} {'tells the truth' if says_truth else 'lies'}.")
        truthful = truthful == says_truth
      question = f"Question: {' '.join(lines)} Does {people[-1]} tell the truth?"
      out.append((question, "Yes" if truthful else "No", []))
    else:
      raise ValueError(f"no generator for BBH task {task!r}")
  return out


def bbh_offline_examples(task: str, bigbench_dir=None, seed: int = 0, data_dir=None):
  """(exemplars, evaluated) of one BBH task rebuilt from BIG-bench: 3 and up to 250."""
  source = BBH_TASKS[task]
  n = 3 + BBH_MAX_EXAMPLES
  if source is None:
    examples = generated_bbh_examples(task, n, seed)
  else:
    root = storage.path(bigbench_dir) if bigbench_dir else bigbench_root(data_dir)
    if root is None:
      raise FileNotFoundError(
          f"task bigbench_bbh_{task}: BIG-bench's task files are not in "
          f"{catalogue.data_dir(data_dir)}; run `flan-jax data prepare bigbench` (with --data_dir)")
    path = _need(root / source / "task.json", f"bigbench_bbh_{task}", "this BIG-bench version lacks it")
    examples = bigbench_examples(json.loads(path.read_text(encoding="utf-8")), task, seed)
    random.Random(f"{task}:{seed}").shuffle(examples)
  return examples[:3], examples[3:n]


def bbh_offline_rows(task: str, bigbench_dir=None, data_dir=None) -> list[Row]:
  """3-shot direct prompts in BBH's layout over the examples rebuilt from BIG-bench."""
  shots, evaluated = bbh_offline_examples(task, bigbench_dir, data_dir=data_dir)
  exemplars = [(q, "", gold) for q, gold, _ in shots]
  return [_row(*_bbh_parts("", exemplars, q, cot=False), gold, options)
          for q, gold, options in evaluated]


def register_bbh(data_dir=None, *, bigbench_dir=None) -> list[str]:
  """The 27 BBH task files in direct and CoT form (the curated release), and their direct
  form rebuilt from BIG-bench (`bigbench_bbh_*`, reported as "BIG-bench BBH")."""
  direct, cot, rebuilt = [], [], []
  for task in BBH_TASKS:
    kw = dict(suite="BBH", answer="number" if task in BBH_NUMERIC_TASKS else "text", scorer="bbh",
              stops=scoring.BBH_STOPS)
    direct.append(register_task(f"bbh_{task}_3shot_direct", lambda t=task: bbh_rows(t, False, data_dir), **kw))
    cot.append(register_task(f"bbh_{task}_3shot_cot", lambda t=task: bbh_rows(t, True, data_dir), cot=True, **kw))
    rebuilt.append(register_task(
        f"bigbench_bbh_{task}_3shot_direct", lambda t=task: bbh_offline_rows(t, bigbench_dir, data_dir),
        **{**kw, "suite": "BIG-bench BBH"}))
  api.register_mixture("bbh_3shot_direct", direct, default_rate=1.0)
  api.register_mixture("bbh_3shot_cot", cot, default_rate=1.0)
  api.register_mixture("bigbench_bbh_3shot_direct", rebuilt, default_rate=1.0)
  return direct + cot + rebuilt


# ---------------------------------------------------------------------------------------
# BIG-bench JSON tasks as such (BBH's sources), registered on request (`flan-jax eval
# --gin.evaluate.bigbench_tasks=[...]`).

BBH_BIGBENCH_TASKS = ("date_understanding", "navigate", "sports_understanding", "word_sorting")


def _bigbench_rows(task_json: dict) -> list[dict]:
  rows = []
  for question, target, options in bigbench_json_examples(task_json):
    listed = templates.render_options(options) if options else ""
    rows.append(_row("", [], f"Q: {question}{listed}\nA:", target, options))
  return rows


def register_bigbench_tasks(names: Sequence[str] = BBH_BIGBENCH_TASKS, *, max_examples: int = 250,
                            vocabulary=None, data_dir=None) -> list[str]:
  """Registers `bbh_bigbench_<name>` seqio tasks (zero-shot, direct, options shown) from
  BIG-bench's JSON tasks (`bigbench_root`: `flan-jax data prepare bigbench`, or an
  installed `bigbench` package), split "validation" = the first `max_examples` examples.
  Returns the names registered; [] when neither is there."""
  root = bigbench_root(data_dir)
  if root is None:
    return []
  registered = []
  for name in names:
    path = root / name / "task.json"
    if not path.is_file():
      raise ValueError(f"BIG-bench task {name!r} has no {path} (tasks with subtasks are not supported); "
                       f"pick one of the directories in {root}")
    with storage.open(path) as f:
      rows = _bigbench_rows(json.load(f))[:max_examples]
    registered.append(register_task(f"bbh_bigbench_{name}", lambda rows=rows: rows, suite="BIG-bench BBH",
                                    column="BIG-bench zero-shot", vocabulary=vocabulary))
  return registered


# ---------------------------------------------------------------------------------------
# TyDiQA GoldP: SQuAD-format JSON; the language is the prefix of each question id.


def _squad_items(path: pathlib.Path):
  data = json.loads(path.read_text(encoding="utf-8"))["data"]
  for article in data:
    for para in article["paragraphs"]:
      for qa in para["qas"]:
        answers = [a["text"] for a in qa.get("answers", [])]
        yield qa["id"].split("-", 1)[0], para["context"], qa["question"], answers


def _tydiqa_prompt(context: str, question: str) -> str:
  return f"{context.strip()}\n\nQ: {question.strip()}\n\nA:"


def tydiqa_rows(language: str, data_dir=None) -> list[Row]:
  root = _root(data_dir, "tydiqa")
  task = f"tydiqa_goldp_{language}_1shot"
  hint = "put tydiqa-goldp-v1.1-{train,dev}.json there (`flan-jax data prepare tydiqa`)"
  train = _need(root / "tydiqa-goldp-v1.1-train.json", task, hint)
  dev = _need(root / "tydiqa-goldp-v1.1-dev.json", task, hint)
  shot = next(((c, q, a) for lang, c, q, a in _squad_items(train) if lang == language and a),
              None)
  if shot is None:
    raise ValueError(f"task {task!r}: {train} has no {language} question with an answer")
  exemplar = f"{_tydiqa_prompt(shot[0], shot[1])} {shot[2][0]}\n\n"
  return [_row("", [exemplar], _tydiqa_prompt(c, q), a[0], (), a)
          for lang, c, q, a in _squad_items(dev) if lang == language and a]


def register_tydiqa(data_dir=None) -> list[str]:
  names = [register_task(f"tydiqa_goldp_{lang}_1shot", lambda l=lang: tydiqa_rows(l, data_dir),
                         suite="TyDiQA", answer="span", scorer="tydiqa")
           for lang in TYDIQA_LANGUAGES]
  api.register_mixture("tydiqa_goldp_1shot", names, default_rate=1.0)
  return names


# ---------------------------------------------------------------------------------------
# MGSM: mgsm_{lang}.tsv (question, numeric answer) and the release's exemplars.py, whose
# MGSM_EXEMPLARS maps each language to 8 exemplars {"q": "<question word> ...",
# "a": "<answer lead> ... <answer phrase> N."}.


def _tsv(path: pathlib.Path, columns: int) -> list[list[str]]:
  with storage.open(path) as f:
    rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
  for i, r in enumerate(rows):
    if len(r) != columns:
      raise ValueError(f"{path}:{i + 1}: expected {columns} tab-separated columns, got {len(r)}")
  return rows


def read_mgsm_exemplars(path: pathlib.Path) -> dict[str, list[tuple[str, str]]]:
  """The MGSM_EXEMPLARS literal of the release's exemplars.py, read as data (never run):
  {language: [(q, a)] in the order of their keys "1".."8"}."""
  import ast  # pylint: disable=g-import-not-at-top
  tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
  for node in tree.body:
    if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MGSM_EXEMPLARS" for t in node.targets):
      try:
        value = ast.literal_eval(node.value)
      except ValueError as e:
        raise ValueError(f"{path}: MGSM_EXEMPLARS is not a plain literal ({e})") from None
      return {lang: [(ex[k]["q"], ex[k]["a"]) for k in sorted(ex, key=int)] for lang, ex in value.items()}
  raise ValueError(f"{path}: no MGSM_EXEMPLARS assignment")


_LEAD = re.compile(r"^[^:：]*[:：]\s*")


def mgsm_parts(language: str, data_dir=None) -> tuple[list[str], str, str]:
  """(8 exemplar blocks, the question word, the answer lead) of a language, from
  mgsm/exemplars.py: "Frage: ...\nSchritt-für-Schritt-Antwort: ...\n\n", "Frage: ",
  "Schritt-für-Schritt-Antwort:"."""
  task = f"mgsm_{language}_8shot_cot"
  path = _need(_root(data_dir, "mgsm") / "exemplars.py", task,
               "the release's native CoT exemplars (`flan-jax data prepare mgsm`)")
  exemplars = read_mgsm_exemplars(path)
  if len(exemplars.get(language, ())) < 8:
    raise ValueError(f"task {task!r}: {path} has {len(exemplars.get(language, ()))} exemplars for "
                     f"{language!r}; MGSM has 8 per language")
  shots = exemplars[language][:8]
  q_word, a_lead = _LEAD.match(shots[0][0]), _LEAD.match(shots[0][1])
  if not q_word or not a_lead:
    raise ValueError(f"task {task!r}: {path}: {language} exemplar 1 does not open with "
                     "'<question word>:' and '<answer lead>:'")
  return [f"{q}\n{a}\n\n" for q, a in shots], q_word.group(0), a_lead.group(0).rstrip()


def mgsm_rows(language: str, data_dir=None) -> list[Row]:
  task = f"mgsm_{language}_8shot_cot"
  path = _need(_root(data_dir, "mgsm") / f"mgsm_{language}.tsv", task,
               "put the MGSM TSVs (question, answer) there (`flan-jax data prepare mgsm`)")
  shots, q_word, a_lead = mgsm_parts(language, data_dir)
  return [_row("", shots, f"{q_word}{q}\n{a_lead}", a.strip()) for q, a in _tsv(path, 2)]


def _register_mgsm_language(language: str, data_dir=None) -> str:
  return register_task(
      f"mgsm_{language}_8shot_cot", lambda: mgsm_rows(language, data_dir), suite="MGSM", cot=True,
      answer="number", column="MGSM English" if language == MGSM_ENGLISH else "MGSM", scorer="mgsm",
      answer_phrases=MGSM_ANSWER_PHRASES[language], stops=(MGSM_QUESTION_WORDS[language],))


def register_mgsm(data_dir=None) -> list[str]:
  names = [_register_mgsm_language(lang, data_dir) for lang in MGSM_LANGUAGES]
  api.register_mixture("mgsm_8shot_cot", names, default_rate=1.0)
  return names + [_register_mgsm_language(MGSM_ENGLISH, data_dir)]


def register_all(data_dir=None) -> list[str]:
  """Registers every suite (reads no data); returns the task names."""
  return (register_mmlu(data_dir) + register_bbh(data_dir) + register_tydiqa(data_dir)
          + register_mgsm(data_dir))


TASKS = register_all()
