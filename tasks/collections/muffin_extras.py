"""The six Muffin tasks TFDS does not hold: Taskmaster dialogs and program synthesis.

`flan-jax data prepare muffin` fetches their releases and writes
`<data_dir>/muffin/<task>/{train,validation}.jsonl` in the "dialog" / "generate" fields
(`text`, `answer`), the same files the TFDS converters write.

  task_master        Taskmaster-1 and Taskmaster-2 (Google's release JSON): one example
                     per assistant turn, the conversation so far as input.
  dmcc_python        DeepMind CodeContests (`deepmind/code_contests` on the Hugging Face
                     hub): a problem statement to its first Python 3 solution (else Python 2).
  dr_repair_*        DrRepair's compiler-error data (Yasunaga & Liang 2020; the
                     preprocessed zips), four presentations of "fix this C++ program":
      plain_code        the broken program as text; target: the corrected program
      line_numbers      lines numbered from 1; target: "line N: <corrected line>" per
                        changed line
      error_comments    numbered lines, the compiler message as a comment on the line it
                        names; target as line_numbers
      no_errors         numbered lines of either the broken or the correct program
                        (half each, by a hash); target: the fixes, or that there is none
                     Each error case goes to one of the four tasks, by a hash, so the
                     tasks see disjoint programs-with-errors.

Which turns, solutions and presentations to use are our reading of FLAN's task names;
the paper does not spell them out. Every reader here takes the release's own format,
so the tests feed hand-written rows in that format.
"""
from __future__ import annotations

import json
import pathlib
import zlib
from collections.abc import Iterable, Iterator
from typing import NamedTuple

# --- Taskmaster --------------------------------------------------------------------------
TASKMASTER_URL = "https://raw.githubusercontent.com/google-research-datasets/Taskmaster/master"
TASKMASTER_FILES = (
    "TM-1-2019/self-dialogs.json", "TM-1-2019/woz-dialogs.json",
    *(f"TM-2-2020/data/{d}.json" for d in ("flights", "food-ordering", "hotels", "movies",
                                            "music", "restaurant-search", "sports")))


def taskmaster_rows(conversations: Iterable[dict]) -> Iterator[tuple[str, dict]]:
  """Taskmaster conversations ({conversation_id, utterances: [{speaker, text}, ...]}) ->
  (conversation id, row), a row per assistant turn that follows at least one turn: the
  turns before it, one per line as "User: ..." / "Assistant: ...", and the turn as the
  answer."""
  if not isinstance(conversations, list):
    raise ValueError("expected a list of conversations")
  for conv in conversations:
    if not isinstance(conv, dict) or not isinstance(conv.get("utterances", []), list):
      raise ValueError(f"expected a conversation with utterances, got {str(conv)[:80]!r}")
    key = str(conv.get("conversation_id", ""))
    history = []
    for u in conv.get("utterances") or ():
      speaker = str(u.get("speaker", "")).strip().capitalize()
      text = " ".join(str(u.get("text", "")).split())
      if not text:
        continue
      if speaker == "Assistant" and history:
        yield key, {"text": "\n".join(history), "answer": text}
      history.append(f"{speaker}: {text}")


# --- DeepMind CodeContests ---------------------------------------------------------------
CODE_CONTESTS = "deepmind/code_contests"
_PYTHON3, _PYTHON2 = 3, 1   # CodeContests' Language enum (1 PYTHON, 2 CPP, 3 PYTHON3, 4 JAVA)


def _solutions(field) -> list[tuple[int, str]]:
  """(language, code) pairs from CodeContests' `solutions`, which the hub returns as a
  dict of lists ({"language": [...], "solution": [...]}) and JSON exports as a list of
  dicts."""
  if isinstance(field, dict):
    return list(zip(field.get("language", ()), field.get("solution", ())))
  return [(s["language"], s["solution"]) for s in field or ()]


def code_contests_row(ex: dict) -> dict | None:
  """A CodeContests problem -> its statement and first Python 3 (else Python 2)
  solution; None when it has no Python solution."""
  by_language = {}
  for language, code in _solutions(ex.get("solutions")):
    by_language.setdefault(int(language), code)
  code = by_language.get(_PYTHON3) or by_language.get(_PYTHON2)
  description = (ex.get("description") or "").strip()
  if not code or not description:
    return None
  return {"text": f"{description}\n\nWrite a Python program that solves this problem.",
          "answer": code.strip()}


# --- DrRepair ----------------------------------------------------------------------------
DR_REPAIR_URL = "https://nlp.stanford.edu/projects/myasu/DrRepair/data"
DR_REPAIR_ARCHIVES = (
    "err-data-compiler--auto-corrupt--codeforce--deepfix-style.zip",
    "err-data-compiler--auto-corrupt--codeforce--spoc-style.zip",
    "err-data-compiler--auto-corrupt--orig-deepfix.zip",
    "err-data-compiler--orig-spoc.zip",
)
DR_REPAIR_TASKS = ("dr_repair_plain_code", "dr_repair_line_numbers",
                   "dr_repair_error_comments", "dr_repair_no_errors")
ERRORS_PER_PROGRAM = 3   # the auto-corrupted programs carry up to hundreds of variants each
_NO_ERRORS = "The program has no errors."


class RepairCase(NamedTuple):
  """One compile error: lines are (indent, code) pairs; `changed` indexes the lines that
  differ; `err_line` is the line the compiler names."""
  case_id: str
  broken: list[tuple[int, str]]
  fixed: list[tuple[int, str]]
  changed: tuple[int, ...]
  err_line: int
  message: str


def _program_cases(data: dict, stem: str) -> Iterator[RepairCase]:
  """A preprocessed program file: {meta, lines: [{line, code, indent, ...}], errors:
  [{mod_line: [i], mod_code: [code], err_line, err_msg}]}; each error is the correct
  program with the `mod_line`s replaced by `mod_code`."""
  lines = sorted(data["lines"], key=lambda l: l["line"])
  fixed = [(int(l["indent"]), l["code"]) for l in lines]
  for k, err in enumerate(data.get("errors", ())[:ERRORS_PER_PROGRAM]):
    broken = list(fixed)
    for i, code in zip(err["mod_line"], err["mod_code"]):
      broken[i] = (fixed[i][0], code)
    changed = tuple(i for i in sorted(set(err["mod_line"])) if broken[i] != fixed[i])
    if changed:
      yield RepairCase(f"{stem}#{k}", broken, fixed, changed, int(err["err_line"]),
                       err["err_msg"])


def _pair_case(data: dict, case_id: str) -> RepairCase | None:
  """A dev-set row: {code_lines, gold_code_lines: [{code, indent, ...}], err_line:
  {lineno, msg}, info}."""
  broken = [(int(l["indent"]), l["code"]) for l in data["code_lines"]]
  fixed = [(int(l["indent"]), l["code"]) for l in data["gold_code_lines"]]
  changed = tuple(i for i, (b, f) in enumerate(zip(broken, fixed)) if b != f)
  if len(broken) != len(fixed) or not changed:
    return None
  return RepairCase(case_id, broken, fixed, changed, int(data["err_line"]["lineno"]),
                    data["err_line"]["msg"])


def read_repair_cases(root: pathlib.Path) -> Iterator[RepairCase]:
  """Every error case under `root`: program files (*.json) and dev-set rows (*.jsonl),
  in sorted path order. A file in neither format raises naming it."""
  for path in sorted(p for p in root.rglob("*") if p.suffix in (".json", ".jsonl")):
    try:
      if path.suffix == ".json":
        yield from _program_cases(json.loads(path.read_text(encoding="utf-8")), path.stem)
      else:
        with open(path, encoding="utf-8") as f:
          for i, line in enumerate(f):
            if line.strip():
              info = (data := json.loads(line)).get("info", {})
              case = _pair_case(data, f"{info.get('probid', path.stem)}-"
                                      f"{info.get('subid', i)}#{i}")
              if case:
                yield case
    except (KeyError, TypeError, ValueError, IndexError) as e:
      raise ValueError(f"{path}: not a DrRepair program file or dev row "
                       f"({type(e).__name__}: {e})") from e


def _program(lines, numbered: bool, comments: dict[int, str] | None = None) -> str:
  out = []
  for i, (indent, code) in enumerate(lines):
    text = "  " * indent + code
    if numbered:
      text = f"{i + 1} {text}"
    if comments and i in comments:
      text += f"  // error: {comments[i]}"
    out.append(text)
  return "\n".join(out)


def _fixes(case: RepairCase) -> str:
  return "\n".join(f"line {i + 1}: {case.fixed[i][1]}" for i in case.changed)


def _hash(text: str) -> int:
  return zlib.crc32(text.encode("utf-8"))


def repair_example(case: RepairCase) -> tuple[str, str, dict]:
  """(task, program id, row): the one of the four tasks that `case` goes to, by a hash of
  its id, and its row there."""
  h = _hash(case.case_id)
  task = DR_REPAIR_TASKS[h % 4]
  ask = "Fix the compile error in this C++ program."
  if task == "dr_repair_plain_code":
    row = {"text": f"{ask}\n\n{_program(case.broken, False)}",
           "answer": _program(case.fixed, False)}
  elif task == "dr_repair_line_numbers":
    row = {"text": f"{ask} Give each corrected line with its number.\n\n"
                   f"{_program(case.broken, True)}", "answer": _fixes(case)}
  elif task == "dr_repair_error_comments":
    row = {"text": f"{ask} The compiler's message is a comment on the line it names. "
                   f"Give each corrected line with its number.\n\n"
                   f"{_program(case.broken, True, {case.err_line: case.message})}",
           "answer": _fixes(case)}
  else:
    ask = "Does this C++ program compile? If not, give each corrected line with its number."
    correct = (h // 4) % 2 == 1
    row = {"text": f"{ask}\n\n{_program(case.fixed if correct else case.broken, True)}",
           "answer": _NO_ERRORS if correct else _fixes(case)}
  return task, case.case_id.split("#", 1)[0], row


def is_validation(key: str, every: int = 10) -> bool:
  """Held out by a hash of the program or conversation, so that all rows of one program
  (or one dialog) fall on the same side."""
  return _hash(key) % every == 0


# The catalogue datasets this module fetches (`prepare` skips them in the TFDS step).
DATASETS = ("task_master", "dmcc_python", *DR_REPAIR_TASKS)
