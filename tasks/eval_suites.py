"""The paper's held-out benchmarks as seqio tasks: MMLU, BBH, TyDiQA GoldP and MGSM.

  from flan_jax.tasks import eval_suites
  eval_suites.register_all()            # or register_mmlu() / register_bbh() / ...
  flan-jax eval --gin.EVAL_TASKS="['mmlu_5shot_direct', 'bbh_3shot_cot']" ...

Every task has one split, "validation", holding the examples the paper reports on, and
the features the evaluator reads: `inputs` (the whole few-shot prompt), `targets`,
`options` (answer options, for letter answers) and `answers` (all gold answers; TyDiQA).
Each task records, when registered, its suite, its column of the paper's table and its
answer kind (`metrics.record_eval_task`); the evaluator (`flan_jax/evaluator.py`) reads
that record and extracts answers ("So the answer is (B)." -> option B; numbers for MGSM).

| suite  | tasks                              | prompt                        | data (under the data dir)      |
|--------|------------------------------------|-------------------------------|--------------------------------|
| MMLU   | mmlu_{subject}_5shot_{direct,cot}  | 5 dev exemplars; CoT prompts  | mmlu/{dev,test}/{subject}_{split}.csv; mmlu/mmlu-cot.json |
| BBH    | bbh_{task}_3shot_{direct,cot}      | 3 exemplars of the BBH prompts | bbh/{task}.json, bbh/cot-prompts/{task}.txt |
| BBH offline | bbh_{task}_3shot_direct, bbh_{task}_zscot | from BIG-bench's task JSON | bigbench/benchmark_tasks/ (`flan-jax data prepare bigbench`), else an installed `bigbench` |
| BIG-bench | bbh_bigbench_{task} (on request: `register_bigbench_tasks`) | zero-shot, options shown | as BBH offline |
| TyDiQA | tydiqa_goldp_{lang}_1shot          | 1 train exemplar, same language | tydiqa/tydiqa-goldp-v1.1-{train,dev}.json |
| MGSM   | mgsm_{lang}_8shot_cot              | 8 CoT exemplars (native, else English GSM8K: "EN-CoT") | mgsm/mgsm_{lang}.tsv |

Mixtures (seqio, for `flan-jax eval`): mmlu_5shot_direct, mmlu_5shot_cot, bbh_3shot_direct,
bbh_3shot_cot (or bbh_zscot offline; `bbh_cot` names whichever is registered),
tydiqa_goldp_1shot, mgsm_8shot_cot.
Registration reads no data; a task whose files are missing fails when it is evaluated,
naming the file it looked for. NIv2 tasks that overlap MMLU are kept out of training by
`catalogue.niv2_keep`.

Offline BBH: when the curated BBH files are absent, the 27 BBH task files are built from
BIG-bench's own tasks (the source BBH was drawn from): the task files that
`flan-jax data prepare bigbench` extracts into the data dir, else those of an installed
`bigbench` package: a seeded shuffle, the first 3 examples as exemplars, the next 250 evaluated.
Three BBH tasks are programmatic in BIG-bench (boolean_expressions,
multistep_arithmetic_two, web_of_lies); their examples are generated here in BBH's
format. Without rationales there is no few-shot CoT offline, so its CoT column uses
zero-shot CoT ("Let's think step by step.").
"""
from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import pathlib
import random
import re
from collections.abc import Sequence

from flan_jax.tasks import api
from flan_jax.tasks import metrics
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
# BBH tasks whose answers are numbers, compared as numbers ("6" = "6.0" = "There are 6").
BBH_NUMERIC_TASKS = frozenset({"multistep_arithmetic_two", "object_counting"})
BBH_TASK_GROUPS = sorted({re.sub(r"_(three|five|seven)_objects$", "", t) for t in BBH_TASKS})
BBH_MAX_EXAMPLES = 250
TYDIQA_LANGUAGES = ("arabic", "bengali", "english", "finnish", "indonesian", "korean",
                    "russian", "swahili", "telugu")
MGSM_LANGUAGES = ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
COT_TRIGGER = "Let's think step by step."

Row = dict  # {"inputs": str, "targets": str, "options": [str], "answers": [str]}


def _need(path: pathlib.Path, task: str, hint: str) -> pathlib.Path:
  if not path.is_file():
    raise readers.missing_data(task, path, hint)
  return path


def _row(inputs: str, targets: str, options=(), answers=()) -> Row:
  return {"inputs": inputs, "targets": targets, "options": list(options),
          "answers": list(answers) or [targets]}


def register_task(name: str, rows, *, suite: str, cot: bool = False, answer: str = "text",
                  vocabulary=None) -> str:
  """Registers one evaluation task (`api.register_eval_task`) and records how it is scored:
  its suite, column (from suite and `cot`) and answer kind (`metrics.ANSWER_KINDS`)."""
  metrics.record_eval_task(name, suite=suite, cot=cot, answer=answer)
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


def _mmlu_question(r: list[str]) -> str:
  return f"{r[0].strip()}\n{_lettered([o.strip() for o in r[1:5]])}"


def _mmlu_question_inline(r: list[str]) -> str:
  """The question with its options on one line, "(A) x (B) y ...", as the exemplars of
  the MMLU CoT prompts (mmlu-cot.json) write them."""
  return f"{r[0].strip()}\n" + " ".join(f"({LETTERS[i]}) {o.strip()}"
                                       for i, o in enumerate(r[1:5]))


def mmlu_rows(subject: str, cot: bool, data_dir=None, num_shots: int = 5) -> list[Row]:
  root = _root(data_dir, "mmlu")
  task = f"mmlu_{subject}_{num_shots}shot_{'cot' if cot else 'direct'}"
  test = _mmlu_csv(root, subject, "test", task)
  topic = subject.replace("_", " ")
  if cot:
    prompts = json.loads(_need(root / "mmlu-cot.json", task, "it holds the few-shot CoT "
                               "prompt of each subject (subject -> prompt text)").read_text())
    if subject not in prompts:
      raise ValueError(f"task {task!r}: {root / 'mmlu-cot.json'} has no prompt for {subject!r}")
    head = prompts[subject].rstrip() + "\n\n"
  else:
    dev = _mmlu_csv(root, subject, "dev", task)[:num_shots]
    head = (f"The following are multiple choice questions (with answers) about {topic}.\n\n"
            + "".join(f"{_mmlu_question(r)}\nAnswer: ({r[5].strip()})\n\n" for r in dev))
  out = []
  for r in test:
    options = [o.strip() for o in r[1:5]]
    if cot:
      inputs = templates.add_cot_trigger(f"{head}Q: {_mmlu_question_inline(r)}\nA:")
    else:
      inputs = f"{head}{_mmlu_question(r)}\nAnswer:"
    out.append(_row(inputs, f"({r[5].strip()})", options))
  return out


def register_mmlu(data_dir=None) -> list[str]:
  names = {"direct": [], "cot": []}
  for subject in MMLU_SUBJECTS:
    for kind in names:
      names[kind].append(register_task(
          f"mmlu_{subject}_5shot_{kind}",
          lambda s=subject, c=(kind == "cot"): mmlu_rows(s, c, data_dir), suite="MMLU", cot=kind == "cot"))
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
  """A BBH cot-prompts file -> (task description, [(question, rationale, answer)])."""
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
      a = a[len(COT_TRIGGER):].lstrip()
    # The rationale keeps the release's layout: its line breaks, and the space or line
    # break before "So the answer is".
    rationale, _, answer = a.rpartition("So the answer is ")
    shots.append((q.strip(), rationale, answer.strip().rstrip(".")))
  return description, shots


def _bbh_prompt(description: str, shots, query: str, cot: bool) -> str:
  """A BBH prompt laid out as the release's cot-prompts files: each CoT exemplar answers
  "A: Let's think step by step." then, on the next line, its rationale."""
  parts = [description] if description else []
  for q, rationale, answer in shots:
    if cot:
      sep = "" if not rationale or rationale[-1].isspace() else " "
      a = f"{COT_TRIGGER}\n{rationale}{sep}So the answer is {answer}."
    else:
      a = answer
    parts.append(f"Q: {q}\nA: {a}")
  query = f"Q: {query}\nA:"
  parts.append(templates.add_cot_trigger(query) if cot else query)
  return "\n\n".join(parts)


def bbh_rows(task: str, cot: bool, data_dir=None) -> list[Row]:
  root = _root(data_dir, "bbh")
  name = f"bbh_{task}_3shot_{'cot' if cot else 'direct'}"
  hint = "unpack the BBH release (bbh/*.json, cot-prompts/*.txt) there"
  path = _first_file(root / f"{task}.json", root / "bbh" / f"{task}.json")
  examples = json.loads(_need(path, name, hint).read_text())["examples"]
  prompt = _need(root / "cot-prompts" / f"{task}.txt", name, hint)
  description, shots = parse_cot_prompt(prompt.read_text(encoding="utf-8"))
  if not shots:
    raise ValueError(f"task {name!r}: no 'Q: ... A: ...' exemplars in {prompt}")
  return [_row(_bbh_prompt(description, shots, ex["input"], cot), ex["target"],
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


def bigbench_examples(task_json: dict) -> list[tuple[str, str, list[str]]]:
  """BIG-bench JSON examples -> (question, target, options) in BBH's style: multiple choice
  questions list "Options:" with letters and their target is the letter."""
  out = []
  for question, target, options in bigbench_json_examples(task_json):
    if not options or len(options) > len(LETTERS):  # e.g. dyck_languages: free-form in BBH
      out.append((question, target, []))
    else:
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
  """(exemplars, evaluated) of one BBH task built from BIG-bench: 3 and up to 250."""
  source = BBH_TASKS[task]
  n = 3 + BBH_MAX_EXAMPLES
  if source is None:
    examples = generated_bbh_examples(task, n, seed)
  else:
    root = storage.path(bigbench_dir) if bigbench_dir else bigbench_root(data_dir)
    if root is None:
      raise FileNotFoundError(
          f"task bbh_{task}: neither the BBH files nor BIG-bench's task files are in "
          f"{catalogue.data_dir(data_dir)}; run `flan-jax data prepare bbh` or "
          "`flan-jax data prepare bigbench` (with --data_dir)")
    path = _need(root / source / "task.json", f"bbh_{task}", "this BIG-bench version lacks it")
    examples = bigbench_examples(json.loads(path.read_text(encoding="utf-8")))
    random.Random(f"{task}:{seed}").shuffle(examples)
  return examples[:3], examples[3:n]


def bbh_offline_rows(task: str, mode: str, bigbench_dir=None, data_dir=None) -> list[Row]:
  """mode "direct": 3-shot direct; "zscot": zero-shot CoT."""
  shots, evaluated = bbh_offline_examples(task, bigbench_dir, data_dir=data_dir)
  rows = []
  for q, target, options in evaluated:
    if mode == "direct":
      inputs = _bbh_prompt("", [(sq, "", st) for sq, st, _ in shots], q, cot=False)
    else:
      inputs = templates.add_cot_trigger(f"Q: {q}\nA:")
    rows.append(_row(inputs, target, options))
  return rows


def register_bbh(data_dir=None, *, offline: bool | None = None, bigbench_dir=None) -> list[str]:
  """The 27 BBH task files in direct and CoT form. `offline=None` picks the curated files
  when `<data_dir>/bbh/cot-prompts` exists, else BIG-bench (offline)."""
  root = _root(data_dir, "bbh")
  if offline is None:
    offline = not (root / "cot-prompts").is_dir() and (
        bigbench_dir is not None or bigbench_root(data_dir) is not None)
  direct, cot = [], []
  for task in BBH_TASKS:
    kw = dict(suite="BBH", answer="number" if task in BBH_NUMERIC_TASKS else "text")
    if offline:
      direct.append(register_task(
          f"bbh_{task}_3shot_direct", lambda t=task: bbh_offline_rows(t, "direct", bigbench_dir, data_dir), **kw))
      cot.append(register_task(
          f"bbh_{task}_zscot", lambda t=task: bbh_offline_rows(t, "zscot", bigbench_dir, data_dir), cot=True, **kw))
    else:
      direct.append(register_task(
          f"bbh_{task}_3shot_direct", lambda t=task: bbh_rows(t, False, data_dir), **kw))
      cot.append(register_task(
          f"bbh_{task}_3shot_cot", lambda t=task: bbh_rows(t, True, data_dir), cot=True, **kw))
  api.register_mixture("bbh_3shot_direct", direct, default_rate=1.0)
  api.register_mixture("bbh_zscot" if offline else "bbh_3shot_cot", cot, default_rate=1.0)
  api.register_mixture("bbh_cot", cot, default_rate=1.0)  # whichever CoT form is available
  return direct + cot


# ---------------------------------------------------------------------------------------
# BIG-bench JSON tasks as such (BBH's sources), registered on request (`flan-jax eval
# --gin.evaluate.bigbench_tasks=[...]`).

BBH_BIGBENCH_TASKS = ("date_understanding", "navigate", "sports_understanding", "word_sorting")


def _bigbench_rows(task_json: dict) -> list[dict]:
  rows = []
  for question, target, options in bigbench_json_examples(task_json):
    listed = templates.render_options(options) if options else ""
    rows.append({"inputs": f"Q: {question}{listed}\nA:", "targets": target, "options": options})
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
      rows = [{**r, "answers": [r["targets"]]} for r in _bigbench_rows(json.load(f))[:max_examples]]
    registered.append(register_task(f"bbh_bigbench_{name}", lambda rows=rows: rows, suite="BBH",
                                    vocabulary=vocabulary))
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
  head = f"{_tydiqa_prompt(shot[0], shot[1])} {shot[2][0]}\n\n"
  return [_row(head + _tydiqa_prompt(c, q), a[0], (), a)
          for lang, c, q, a in _squad_items(dev) if lang == language and a]


def register_tydiqa(data_dir=None) -> list[str]:
  names = [register_task(f"tydiqa_goldp_{lang}_1shot", lambda l=lang: tydiqa_rows(l, data_dir),
                         suite="TyDiQA", answer="span")
           for lang in TYDIQA_LANGUAGES]
  api.register_mixture("tydiqa_goldp_1shot", names, default_rate=1.0)
  return names


# ---------------------------------------------------------------------------------------
# MGSM: mgsm_{lang}.tsv (question, numeric answer); 8 CoT exemplars per language.


def _tsv(path: pathlib.Path, columns: int) -> list[list[str]]:
  with storage.open(path) as f:
    rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
  for i, r in enumerate(rows):
    if len(r) != columns:
      raise ValueError(f"{path}:{i + 1}: expected {columns} tab-separated columns, got {len(r)}")
  return rows


def mgsm_exemplars(language: str, data_dir=None) -> list[tuple[str, str, str]]:
  """8 (question, rationale, answer): `mgsm/mgsm_{lang}_exemplars.tsv` (native CoT), else
  the first 8 of the CoT collection's GSM8K TSV (English exemplars, the "EN-CoT" setting)."""
  native = _root(data_dir, "mgsm") / f"mgsm_{language}_exemplars.tsv"
  if native.is_file():
    return [tuple(r) for r in _tsv(native, 3)][:8]
  task = f"mgsm_{language}_8shot_cot"
  gsm8k = _need(catalogue.data_dir(data_dir) / "cot" / "gsm8k_train.tsv", task,
                f"no native exemplars ({native}) and no GSM8K CoT TSV for English ones")
  rows = readers.CotTsvSource(gsm8k, task).examples("train")
  return [(r["question"], r["rationale"], r["answer"]) for r in itertools.islice(rows, 8)]


def mgsm_rows(language: str, data_dir=None) -> list[Row]:
  task = f"mgsm_{language}_8shot_cot"
  path = _need(_root(data_dir, "mgsm") / f"mgsm_{language}.tsv", task,
               "put the MGSM TSVs (question, answer) there (`flan-jax data prepare mgsm`)")
  shots = mgsm_exemplars(language, data_dir)
  head = "".join(f"Q: {q}\nA: {COT_TRIGGER} {r} So the answer is {a}.\n\n" for q, r, a in shots)
  return [_row(f"{head}Q: {q}\nA: {COT_TRIGGER}", a.strip()) for q, a in _tsv(path, 2)]


def register_mgsm(data_dir=None) -> list[str]:
  names = [register_task(f"mgsm_{lang}_8shot_cot", lambda l=lang: mgsm_rows(l, data_dir),
                         suite="MGSM", cot=True, answer="number")
           for lang in MGSM_LANGUAGES]
  api.register_mixture("mgsm_8shot_cot", names, default_rate=1.0)
  return names


def register_all(data_dir=None) -> list[str]:
  """Registers every suite (reads no data); returns the task names."""
  return (register_mmlu(data_dir) + register_bbh(data_dir) + register_tydiqa(data_dir)
          + register_mgsm(data_dir))


TASKS = register_all()
