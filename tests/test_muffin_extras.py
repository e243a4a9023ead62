"""The six Muffin tasks outside TFDS (Taskmaster, CodeContests, DrRepair): readers on rows
in each release's own format, and `data prepare muffin` over served files."""
import json
import shutil

import pytest

from flan_jax.tasks import api
from flan_jax.tasks.collections import muffin_extras as mx


def _conversation(cid, turns):
  """A conversation in the Taskmaster-1/2 release JSON."""
  return {"conversation_id": cid, "instruction_id": "restaurant-table-1",
          "utterances": [{"index": i, "speaker": s, "text": t,
                          "segments": [{"start_index": 0, "end_index": 3, "text": t[:3],
                                        "annotations": [{"name": "restaurant.name"}]}]}
                         for i, (s, t) in enumerate(turns)]}


def test_taskmaster_rows_one_per_assistant_turn_with_history():
  conv = _conversation("dlg-1", [("ASSISTANT", "Hi, how can I help?"),
                                 ("USER", "I need a table  for two."),
                                 ("ASSISTANT", "Which restaurant?"),
                                 ("USER", "Mario's."), ("USER", " "),
                                 ("ASSISTANT", "Booked.")])
  rows = list(mx.taskmaster_rows([conv]))
  # The opening assistant turn has nothing before it, so it is only history; whitespace
  # is normalised and the empty turn dropped.
  assert [(k, r["answer"]) for k, r in rows] == [("dlg-1", "Which restaurant?"),
                                                 ("dlg-1", "Booked.")]
  assert rows[0][1]["text"] == "Assistant: Hi, how can I help?\nUser: I need a table for two."
  assert rows[1][1]["text"].splitlines() == [
      "Assistant: Hi, how can I help?", "User: I need a table for two.",
      "Assistant: Which restaurant?", "User: Mario's."]
  with pytest.raises(ValueError, match="list of conversations"):
    list(mx.taskmaster_rows({"conversation_id": "x"}))


def test_code_contests_row_takes_python3_then_python2():
  # The hub's dict-of-lists form; languages: 1 PYTHON, 2 CPP, 3 PYTHON3, 4 JAVA.
  ex = {"name": "1A. Theatre Square", "description": "Count the flagstones.\n",
        "solutions": {"language": [2, 1, 3, 3], "solution": ["int main(){}", "print 1",
                                                              "print(1)\n", "print(2)"]}}
  row = mx.code_contests_row(ex)
  assert row == {"text": "Count the flagstones.\n\nWrite a Python program that solves this "
                         "problem.", "answer": "print(1)"}
  ex["solutions"] = [{"language": 4, "solution": "class A {}"},
                     {"language": 1, "solution": "print 1"}]   # a JSON export's list form
  assert mx.code_contests_row(ex)["answer"] == "print 1"
  ex["solutions"] = {"language": [2, 4], "solution": ["int main(){}", "class A {}"]}
  assert mx.code_contests_row(ex) is None


PROGRAM = {  # a preprocessed DrRepair program file: the correct program and its errors
    "meta": {"index": 7, "probid": "214A", "subid": "48303922"},
    "lines": [{"line": 0, "text": "DUMMY", "code": "int main() {", "indent": 0},
              {"line": 1, "text": "DUMMY", "code": "int n ;", "indent": 1},
              {"line": 2, "text": "DUMMY", "code": "cin >> n ;", "indent": 1},
              {"line": 3, "text": "DUMMY", "code": "}", "indent": 0}],
    "errors": [{"mod_line": [1], "mod_code": ["int n"], "err_line": 2,
                "err_msg": "expected initializer before 'cin'"},
               {"mod_line": [2, 1], "mod_code": ["cin >> m ;", "int n ;"], "err_line": 2,
                "err_msg": "'m' was not declared in this scope"},
               {"mod_line": [1], "mod_code": ["int n ;"], "err_line": 1, "err_msg": "no-op"},
               {"mod_line": [3], "mod_code": ["{"], "err_line": 3, "err_msg": "4th error"}]}

DEV_ROW = {  # a DrRepair dev-set row (err-dev.1000.jsonl)
    "code_lines": [{"text": "", "code": "int main() {", "indent": 0},
                   {"text": "", "code": "int x [ 3 ] ;", "indent": 1},
                   {"text": "", "code": "cin >> [ 0 ] ;", "indent": 1},
                   {"text": "", "code": "}", "indent": 0}],
    "err_line": {"lineno": 2, "msg": "expected primary - expression before '[' token"},
    "info": {"index": 1018, "probid": "723A", "subid": "65110059"},
    "gold_linenos": [0, 0, 1, 0],
    "gold_code_lines": [{"text": "", "code": "int main() {", "indent": 0},
                        {"text": "", "code": "int x [ 3 ] ;", "indent": 1},
                        {"text": "", "code": "cin >> x [ 0 ] ;", "indent": 1},
                        {"text": "", "code": "}", "indent": 0}]}


def _write_dr_repair(root):
  (root / "err-data-compiler--orig-spoc" / "s1").mkdir(parents=True)
  (root / "err-data-compiler--orig-spoc" / "s1" / "0007-214A-48303922.json").write_text(
      json.dumps(PROGRAM))
  (root / "err-dev").mkdir()
  (root / "err-dev" / "err-dev.1000.jsonl").write_text(json.dumps(DEV_ROW) + "\n\n")


def test_dr_repair_cases_from_program_files_and_dev_rows(tmp_path):
  _write_dr_repair(tmp_path)
  cases = list(mx.read_repair_cases(tmp_path))
  # In path order: the program file, whose no-op error is skipped and whose 4th error is
  # past the first ERRORS_PER_PROGRAM (3); then the dev row.
  assert [c.case_id for c in cases] == ["0007-214A-48303922#0", "0007-214A-48303922#1",
                                        "723A-65110059#0"]
  first, second, dev = cases
  assert dev.changed == (2,) and dev.broken[2] == (1, "cin >> [ 0 ] ;")
  assert dev.fixed[2] == (1, "cin >> x [ 0 ] ;") and dev.err_line == 2
  assert first.broken[1] == (1, "int n") and first.fixed[1] == (1, "int n ;")
  assert second.changed == (2,)   # mod_line 1 carries the correct code: not a change

  by_task = {}
  for case in cases:
    task, key, row = mx.repair_example(case)
    assert key == case.case_id.split("#")[0]
    by_task.setdefault(task, []).append((case, row))
  for task, items in by_task.items():
    for case, row in items:
      if task == "dr_repair_plain_code":
        assert row["text"].endswith("\n".join("  " * i + c for i, c in case.broken))
        assert row["answer"] == "\n".join("  " * i + c for i, c in case.fixed)
      elif task == "dr_repair_line_numbers":
        assert f"\n{case.changed[0] + 1}   {case.broken[case.changed[0]][1]}" in row["text"]
        assert row["answer"] == "\n".join(f"line {i + 1}: {case.fixed[i][1]}"
                                          for i in case.changed)
      elif task == "dr_repair_error_comments":
        line = [l for l in row["text"].splitlines() if "// error:" in l]
        assert line == [f"{case.err_line + 1}   {case.broken[case.err_line][1]}  "
                        f"// error: {case.message}"]
      else:
        assert row["answer"] == "The program has no errors." or row["answer"].startswith(
            "line ")


def test_dr_repair_tasks_split_cases_four_ways_and_no_errors_mixes():
  """Over many cases each task gets about a quarter, every case exactly one task, and
  dr_repair_no_errors shows correct programs (target: no errors) and broken ones."""
  fixed = [(0, "int main() {"), (1, "return 0 ;"), (0, "}")]
  counts, no_errors = {}, set()
  for k in range(400):
    case = mx.RepairCase(f"p{k}#0", [fixed[0], (1, "return 0"), fixed[2]], fixed, (1,), 1,
                         "expected ';'")
    task, _, row = mx.repair_example(case)
    counts[task] = counts.get(task, 0) + 1
    if task == "dr_repair_no_errors":
      no_errors.add(row["answer"])
      assert ("return 0 ;" in row["text"]) == (row["answer"] == "The program has no errors.")
  assert set(counts) == set(mx.DR_REPAIR_TASKS) and min(counts.values()) > 60
  assert no_errors == {"The program has no errors.", "line 2: return 0 ;"}


def test_bad_dr_repair_file_names_the_file(tmp_path):
  (tmp_path / "x.json").write_text(json.dumps({"lines": [{"code": "int a ;"}]}))
  with pytest.raises(ValueError, match=r"x\.json: not a DrRepair program file"):
    list(mx.read_repair_cases(tmp_path))


def test_prepare_muffin_extras_from_served_releases(tmp_path, monkeypatch):
  """`data prepare muffin` (its TFDS step stubbed) fetches Taskmaster JSON and DrRepair
  zips from file:// URLs and CodeContests through the hub loader; what the server lacks
  is reported; the six tasks then render in their formats; a bad file loses nothing."""
  datasets = pytest.importorskip("datasets")
  from flan_jax.tasks import prepare
  from flan_jax.tasks.collections import _register

  served = tmp_path / "served"
  tm1 = served / "tm" / "TM-1-2019"
  tm1.mkdir(parents=True)
  (tm1 / "self-dialogs.json").write_text(json.dumps([
      _conversation(f"dlg-{i}", [("USER", f"Book {i} seats."), ("ASSISTANT", "Where?"),
                                 ("USER", "Rome."), ("ASSISTANT", f"Done, {i} seats.")])
      for i in range(40)]))
  (tm1 / "woz-dialogs.json").write_text("[]")
  src = tmp_path / "drsrc"
  _write_dr_repair(src)
  for k in range(20):   # more programs, so that each of the four tasks gets some
    (src / "err-data-compiler--orig-spoc" / "s1" / f"{k:04d}-1{k}A-{k}.json").write_text(
        json.dumps(PROGRAM).replace("int main() {", f"int main() {{ // {k}"))
  zips = served / "dr"
  zips.mkdir()
  for name in ("err-data-compiler--orig-spoc", "err-dev"):
    shutil.make_archive(str(zips / name), "zip", src, name)
  shutil.copy(zips / "err-dev.zip", zips / "err-data-compiler--auto-corrupt--orig-deepfix.zip")
  (zips / "err-dev.zip").unlink()
  monkeypatch.setattr(mx, "TASKMASTER_URL", (served / "tm").as_uri())
  monkeypatch.setattr(mx, "DR_REPAIR_URL", zips.as_uri())
  monkeypatch.setattr(prepare, "_tfds", lambda collection, root: [])
  problems = [{"description": f"Problem {i}.", "solutions": {"language": [3],
                                                              "solution": [f"print({i})"]}}
              for i in range(12)]
  monkeypatch.setattr(prepare, "_load_code_contests", lambda cache_dir: datasets.DatasetDict(
      {"train": datasets.Dataset.from_list(problems[:10]),
       "valid": datasets.Dataset.from_list(problems[10:])}))

  data = tmp_path / "data"
  failures = prepare.prepare("muffin", data)
  # 7 Taskmaster-2 files and 2 DrRepair zips are not served.
  assert len(failures) == 9, failures
  assert sum("TM-2-2020" in f for f in failures) == 7
  assert sum("codeforce" in f and f.startswith("dr_repair:") for f in failures) == 2
  tm = [json.loads(l) for s in ("train", "validation") for l in
        (data / "muffin" / "muffin_task_master" / f"{s}.jsonl").read_text().splitlines()]
  assert len(tm) == 80
  val = (data / "muffin" / "muffin_task_master" / "validation.jsonl").read_text()
  train = (data / "muffin" / "muffin_task_master" / "train.jsonl").read_text()
  dialogs = lambda text: {i for i in range(40) if f"Book {i} seats." in text}
  assert dialogs(val) and dialogs(train) and not dialogs(val) & dialogs(train)  # by dialog
  dmcc = data / "muffin" / "muffin_dmcc_python"
  assert len((dmcc / "train.jsonl").read_text().splitlines()) == 10
  assert len((dmcc / "validation.jsonl").read_text().splitlines()) == 2
  repaired = sum(len((data / "muffin" / f"muffin_{t}" / s).read_text().splitlines())
                 for t in mx.DR_REPAIR_TASKS for s in ("train.jsonl", "validation.jsonl")
                 if (data / "muffin" / f"muffin_{t}" / s).is_file())
  assert repaired == 21 * 2 + 1

  names = _register.register_file_collection("muffin", data_dir=data)
  try:
    for task in mx.DATASETS:
      dialog = task == "task_master"   # FLAN's dialog formats: zero- and few-shot "opt" only
      for fmt in ("zsopt", "fsopt") + (() if dialog else ("zsnoopt", "fsnoopt")):
        assert f"muffin_{task}_{fmt}" in names
      (r,) = api.render_examples(f"muffin_{task}_{'fsopt' if dialog else 'fsnoopt'}", "train", limit=1)
      assert r.inputs and r.targets and r.exemplar_indices
  finally:
    _register.register_file_collection("muffin")

  # A second run fetches nothing; a broken Taskmaster file is reported by name and the
  # task's files written before stay as they were.
  (data / "taskmaster" / "TM-1-2019" / "woz-dialogs.json").write_text("[{]")
  shutil.rmtree(dmcc)
  (data / "muffin" / "muffin_task_master" / "train.jsonl").rename(
      data / "muffin" / "muffin_task_master" / "kept.jsonl")
  failures = prepare.prepare("muffin", data)
  assert any("woz-dialogs.json: not Taskmaster JSON" in f for f in failures), failures
  assert not (data / "muffin" / "muffin_task_master" / "train.jsonl").exists()
  assert not list((data / "muffin").rglob("*.tmp"))
  assert (data / "muffin" / "muffin_task_master" / "validation.jsonl").read_text() == val
  assert (dmcc / "train.jsonl").is_file()
