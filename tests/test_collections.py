"""The Flan 2022 catalogue, its readers and the `tasks`/`data` commands."""
import csv
import itertools
import json
import pathlib

import pytest

from flan_jax.tasks import data_cli
from flan_jax.tasks import api, templates
from flan_jax.tasks import vocab
from flan_jax.tasks.collections import catalogue
from flan_jax.tasks.collections import families
from flan_jax.tasks.collections import readers

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _shared(path):
  p = SHARED / path
  if not p.exists():
    pytest.skip(f"shared test data {p} is absent")
  return p


@pytest.fixture
def niv2_checkout(tmp_path):
  """A natural-instructions layout whose task files are named after the published task
  metadata (names only; empty files)."""
  meta = json.loads(_shared("niv2/task_metadata.json").read_text())
  tasks = tmp_path / "natural-instructions" / "tasks"
  tasks.mkdir(parents=True)
  for task_id in meta:
    (tasks / f"{task_id}.json").write_text("{}")
  return tmp_path, set(meta)


def test_paper_counts_of_offline_collections():
  counts = catalogue.counts(root="/nonexistent")
  assert counts["muffin"] == 80 and counts["t0sf"] == 193 and counts["cot"] == 9


def test_names_unique_and_valid():
  names = [e.name for e in catalogue.entries(root="/nonexistent")]
  assert len(names) == len(set(names))
  assert all(api._NAME.match(n) for n in names)  # pylint: disable=protected-access


def test_niv2_rule_on_published_metadata(niv2_checkout):
  root, meta = niv2_checkout
  niv2 = catalogue.entries("niv2", root=root)
  ids = {e.dataset for e in niv2}
  assert ids <= meta                                   # every catalogued id exists
  assert not any("mmmlu" in i for i in ids)            # MMLU overlap held out
  # every other dropped id is a repository name with "-", whose seqio-safe twin ("_") in
  # FLAN's metadata is kept: same number, same examples
  full = json.loads(_shared("niv2/task_metadata.json").read_text())
  for dropped in sorted(meta - ids):
    if "_mmmlu_" in dropped:
      continue
    twin = dropped.replace("-", "_")
    assert twin in ids, dropped
    assert full[twin]["number_examples"] == full[dropped]["number_examples"], dropped
  # The rule reproduces the published Flan collection table (1,556 NIv2 tasks); the
  # paper's text says 1,554.
  rows = list(csv.DictReader(_shared("flan_collection_info.csv").open()))
  published = {r["Specific Task Category"] for r in rows if r["Source"] == "NIv2"}
  assert ids == published
  assert len(ids) == 1556
  total = sum(catalogue.counts(root).values())
  assert total == 80 + 193 + 1556 + 9


def test_dataset_names_against_published_table():
  rows = list(csv.DictReader(_shared("flan_collection_info.csv").open()))
  flan = {r["Dataset"] for r in rows if r["Source"] in ("FLAN", "FLAN/T0", "Dialog",
                                                          "Program Synthesis")}
  ours = {e.dataset for e in catalogue.entries("muffin")}
  covered = {d for d in flan if d in ours or f"{d}_matched" in ours}
  print(f"Muffin: {len(covered)}/{len(flan)} published dataset names covered; "
        f"not covered: {sorted(flan - covered)}")
  assert len(covered) / len(flan) >= 0.95
  cot_published = {r["Dataset"].split("_", 1)[1] for r in rows if r["Source"] == "CoT"}
  assert cot_published == {e.dataset for e in catalogue.entries("cot")}
  t0_published = {r["Specific Task Category"] for r in rows if r["Source"] == "T0"}
  assert {e.name for e in catalogue.entries("t0sf")} == {f"t0sf_{n}" for n in t0_published}


@pytest.fixture
def cot_data_dir(tmp_path):
  (tmp_path / "cot").symlink_to(_shared("flan_cot"))
  return tmp_path


def test_cot_renders_real_tsvs(cot_data_dir):
  from flan_jax.tasks.collections import cot
  names = cot.register(data_dir=cot_data_dir)
  assert "cot_gsm8k_zscot" in names and "cot_gsm8k_fscot" in names
  zs = api.render_examples("cot_gsm8k_zscot", "validation", limit=2)
  assert zs[0].inputs.endswith(families.COT_TRIGGERS)  # each template carries its own trigger
  # The rationale, then one of the CoT templates' answer phrasings, which the metric reads back.
  from flan_jax.tasks import metrics
  rows = list(readers.CotTsvSource(cot_data_dir / "cot" / "gsm8k_train.tsv").examples("validation"))[:2]
  for r, row in zip(zs, rows):
    assert r.targets.startswith(row["rationale"]) and metrics.cot_answer(r.targets) == row["answer"], r.targets
  fs = api.render_examples("cot_ecqa_fscot", "train", limit=1)[0]
  assert fs.exemplar_indices and sum(fs.inputs.count(t) for t in families.COT_TRIGGERS) == len(
      fs.exemplar_indices) + 1
  assert "\\n" not in fs.inputs  # literal \n in the TSVs are line breaks
  src = readers.CotTsvSource(cot_data_dir / "cot" / "gsm8k_train.tsv")
  assert src.num_examples("train") + src.num_examples("validation") == 7473


def test_missing_data_fails_at_build_naming_task_and_dir(tmp_path):
  from flan_jax.tasks.collections import cot
  cot.register(data_dir=tmp_path)   # registering reads nothing
  with pytest.raises(FileNotFoundError, match=r"cot_qed.*no data at .*qed_train.tsv"):
    api.render_examples("cot_qed_zscot", "validation", limit=1)
  cot.register()  # back to the default data dir


def _write_niv2_task(path, n=12):
  task = {"Definition": ["Say whether the number is even."],
          "Positive Examples": [{"input": "4", "output": "even", "explanation": "."}],
          "Negative Examples": [],
          "Instances": [{"id": f"t1-{i}", "input": str(i), "output": [["even", "odd"][i % 2]]}
                        for i in range(n)]}
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(task))


def test_niv2_task_json_source_and_registration(tmp_path):
  from flan_jax.tasks.collections import niv2
  task_id = "task001_quoref_question_generation"
  _write_niv2_task(tmp_path / "natural-instructions" / "tasks" / f"{task_id}.json")
  names = niv2.register(data_dir=tmp_path)   # the bundled listing: every NIv2 task
  try:
    assert len(names) == 4 * 1556
    assert names[:4] == [f"niv2_{task_id}_{f}" for f in ("zsopt", "zsnoopt", "fsopt",
                                                         "fsnoopt")]
    val = api.render_examples(f"niv2_{task_id}_zsnoopt", "validation")
    assert [r.targets for r in val] == ["odd"]   # the last instance: a tenth of 12, at most 10
    # FLAN's two few-shot kinds: a positive example with its explanation, or two other
    # instances without one; both end with the query and an answer prefix.
    fs = api.render_examples(f"niv2_{task_id}_fsnoopt", "train")
    assert {r.fewshot_mode for r in fs} == {"demonstrations", "instances"}
    for r in fs:
      query, prefix = r.inputs.rstrip().split("\n")[-2:]  # the query's input, then an answer prefix
      assert query.endswith(f" {r.index}") and prefix.endswith(":"), r.inputs
      assert r.targets == ["even", "odd"][r.index % 2] and "Say whether the number is even." in r.inputs
      if r.fewshot_mode == "demonstrations":
        assert r.exemplar_indices == (0,) and "Input: 4\nOutput: even\nWhy: ." in r.inputs
      else:
        assert len(r.exemplar_indices) == 2 and r.index not in r.exemplar_indices and "Why:" not in r.inputs
        for j in r.exemplar_indices:
          assert f"Input: {j}\nOutput: {['even', 'odd'][j % 2]}" in r.inputs
    assert "Say whether the number is even." in val[0].inputs
    with pytest.raises(FileNotFoundError, match="task002_quoref_answer_generation"):
      api.render_examples("niv2_task002_quoref_answer_generation_zsnoopt", "validation")
  finally:
    niv2.register()  # back to the default data dir


def test_niv2_ids_find_the_repository_files(tmp_path):
  """Our ids are those of FLAN's task metadata, which differ from the natural-instructions
  file names for 51 tasks ("-" written "_", or the name cut at its first "."). In a checkout
  named as the repository names its files (the task list of TFDS's natural_instructions
  builder, the list FLAN's code reads), every catalogue id finds its own file, and
  `data prepare niv2` reports the ids that find none."""
  builder = pytest.importorskip(
      "tensorflow_datasets.datasets.natural_instructions.natural_instructions_dataset_builder")
  repository_names = getattr(builder, "_NIV2_TASKS_LIST", None)
  if not repository_names:
    pytest.skip("this TFDS has no natural_instructions task list")
  from flan_jax.tasks import prepare
  tasks = tmp_path / "natural-instructions" / "tasks"
  tasks.mkdir(parents=True)
  for name in repository_names:
    (tasks / f"{name}.json").write_text("{}")
  found = {e.dataset: readers.niv2_task_file(tasks / f"{e.dataset}.json")
           for e in catalogue.entries("niv2")}
  assert all(p.is_file() for p in found.values())
  assert len(set(found.values())) == len(found) == 1556
  renamed = {i: p.name.removesuffix(".json") for i, p in found.items()
             if p.name != f"{i}.json"}
  assert len(renamed) == 51
  assert renamed["task074_squad1"] == "task074_squad1.1_question_generation"
  assert renamed["task105_story_cloze_rocstories_sentence_generation"] == (
      "task105_story_cloze-rocstories_sentence_generation")
  assert prepare.prepare("niv2", tmp_path) == []
  (tasks / "task1529_scitail1.1_classification.json").unlink()
  (failure,) = prepare.prepare("niv2", tmp_path)
  assert "for 1 catalogue task(s): task1529_scitail1" in failure


def test_niv2_task_under_its_repository_name_renders(tmp_path):
  from flan_jax.tasks.collections import niv2
  _write_niv2_task(tmp_path / "natural-instructions" / "tasks" /
                   "task105_story_cloze-rocstories_sentence_generation.json")
  niv2.register(data_dir=tmp_path)
  try:
    (r,) = api.render_examples("niv2_task105_story_cloze_rocstories_sentence_generation_zsnoopt",
                               "validation")
    assert r.targets == "odd" and "Say whether the number is even." in r.inputs
  finally:
    niv2.register()


def test_languages_and_niv2_categories_in_the_catalogue(tmp_path, capsys, monkeypatch):
  """Translation tasks carry both languages; NIv2 tasks carry the languages and category
  of their task files once `data prepare niv2` has read them ("und"/"NIv2" before); a
  task file that is not JSON is reported by path."""
  from flan_jax.tasks import tasks_cli as cli, prepare
  muffin = {e.dataset: e.language for e in catalogue.entries("muffin")}
  assert muffin["wmt16_translate_deen"] == "de,en" and muffin["para_crawl_enes"] == "en,es"
  assert muffin["wmt14_enfr"] == "fr,en" and muffin["rte"] == "en"
  assert catalogue.language_codes(["Haitian", "English", "Haitian"]) == "ht,en"
  assert catalogue.language_codes(["Klingon"]) == "klingon"

  tasks = tmp_path / "natural-instructions" / "tasks"
  _write_niv2_task(tasks / "task1168_xcopa_commonsense_reasoning_ht.json")
  xcopa = json.loads((tasks / "task1168_xcopa_commonsense_reasoning_ht.json").read_text())
  xcopa.update(Input_language=["Haitian"], Output_language=["Haitian"],
               Categories=["Cause Effect Classification"])
  (tasks / "task1168_xcopa_commonsense_reasoning_ht.json").write_text(json.dumps(xcopa))
  (tasks / "task074_squad1.1_question_generation.json").write_text(json.dumps(
      {"Input_language": ["English"], "Output_language": ["English"],
       "Categories": ["Question Generation"], "Definition": "d", "Instances": []}))
  (tasks / "task001_quoref_question_generation.json").write_text("{")
  before = catalogue.get("niv2_task1168_xcopa_commonsense_reasoning_ht", root=tmp_path)
  assert (before.language, before.category) == ("und", "NIv2")
  failures = prepare.prepare("niv2", tmp_path)
  assert "task001_quoref_question_generation.json: not a natural-instructions" in failures[0]
  assert "for 1553 catalogue task(s)" in failures[1] and len(failures) == 2
  xcopa = catalogue.get("niv2_task1168_xcopa_commonsense_reasoning_ht", root=tmp_path)
  assert (xcopa.language, xcopa.category) == ("ht", "Cause Effect Classification")
  squad = catalogue.get("niv2_task074_squad1", root=tmp_path)
  assert (squad.language, squad.category) == ("en", "Question Generation")
  monkeypatch.delenv(catalogue.DATA_DIR_ENV, raising=False)  # restored after the test
  from flan_jax.tasks.collections import niv2
  try:
    assert cli.main(["--data_dir", str(tmp_path), "show",
                     "niv2_task1168_xcopa_commonsense_reasoning_ht"]) == 0
    out = capsys.readouterr().out
    assert ("# niv2_task1168_xcopa_commonsense_reasoning_ht: niv2, dataset task1168_xcopa_"
            "commonsense_reasoning_ht, Cause Effect Classification, language ht, splits "
            "train/validation, metrics exact_match\n") in out, out
  finally:
    niv2.register()


def test_bundled_niv2_listing_is_the_natural_instructions_task_set():
  meta = json.loads(_shared("niv2/task_metadata.json").read_text())
  listing = catalogue.niv2_listing("/nonexistent")
  assert listing == sorted(meta) and len(listing) == 1654
  assert catalogue.counts("/nonexistent")["niv2"] == 1556


def test_tfds_source_under_mock_data(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=4):
    src = readers.TfdsSource("mnist", tmp_path, convert=lambda ex: {"answer": str(ex["label"])})
    rows = list(src.examples("train"))
  assert len(rows) == 4 and all(set(r) == {"answer"} for r in rows)


def test_hf_source_from_local_files(tmp_path):
  pytest.importorskip("datasets")
  (tmp_path / "train.jsonl").write_text('{"text": "a", "answer": "b"}\n' * 3)
  (tmp_path / "validation.jsonl").write_text('{"text": "c", "answer": "d"}\n')
  src = readers.HfSource(tmp_path)
  assert src.num_examples("train") == 3
  assert list(src.examples("validation")) == [{"text": "c", "answer": "d"}]


def test_export_source_filters_rows(tmp_path):
  rows = [{"inputs": f"q{i}", "targets": f"a{i}", "task_name": ["x", "y"][i % 2],
           "template_type": "zs_opt"} for i in range(6)]
  path = tmp_path / "cot_submix.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  src = readers.ExportSource([path], task_names=["y"])
  assert [r["inputs"] for r in src.examples("train")] == ["q1", "q3", "q5"]
  pq = pytest.importorskip("pyarrow.parquet")
  import pyarrow as pa
  pq.write_table(pa.Table.from_pylist(rows), tmp_path / "rows.parquet")
  assert readers.ExportSource([tmp_path / "rows.parquet"]).num_examples("train") == 6


def test_prepare_reports_failures_offline(tmp_path, monkeypatch, capsys):
  from flan_jax.tasks import prepare
  monkeypatch.setattr(prepare, "NIV2_REPO", str(tmp_path / "no_such_repo"))
  assert data_cli.main(["prepare", "niv2", f"--data_dir={tmp_path}", "--timeout=30"]) == 1
  monkeypatch.setattr(prepare, "COT_URL", (tmp_path / "no_such_dir").as_uri())
  assert data_cli.main(["prepare", "cot", f"--data_dir={tmp_path}"]) == 1
  out = capsys.readouterr().out
  assert "could not get: niv2: git clone" in out and "could not get: cot:" in out
  assert "gsm8k_train.tsv" in out and not list((tmp_path / "cot").glob("*.part"))


def test_prepare_downloads_into_release_layouts(tmp_path, monkeypatch):
  """Served from file:// URLs: the real CoT TSVs, and TyDiQA / MGSM files; what a server
  lacks is reported, what it has lands whole and then evaluates."""
  from flan_jax.tasks import eval_suites, prepare
  served = tmp_path / "served"
  served.mkdir()
  (served / "tydiqa-goldp-v1.1-train.json").write_text(json.dumps({"data": [{"paragraphs": [
      {"context": "Oslo er i Norge.", "qas": [{"id": "finnish-1", "question": "Q?",
                                               "answers": [{"text": "Norge"}]}]}]}]}))
  (served / "tydiqa-goldp-v1.1-dev.json").write_text(
      (served / "tydiqa-goldp-v1.1-train.json").read_text())
  for lang in (*eval_suites.MGSM_LANGUAGES, eval_suites.MGSM_ENGLISH):
    (served / f"mgsm_{lang}.tsv").write_text("1 + 1?\t2\n")
  fixture = pathlib.Path(__file__).resolve().parent / "fixtures" / "eval_suites" / "mgsm" / "exemplars.py"
  (served / "exemplars.py").write_bytes(fixture.read_bytes())
  monkeypatch.setattr(prepare, "COT_URL", _shared("flan_cot").as_uri())
  monkeypatch.setattr(prepare, "TYDIQA_URL", served.as_uri())
  monkeypatch.setattr(prepare, "MGSM_URL", served.as_uri())
  data = tmp_path / "data"
  failures = [f for c in ("cot", "tydiqa", "mgsm") for f in prepare.prepare(c, data)]
  served_cot = {p.name for p in _shared("flan_cot").glob("*_train.tsv")}
  expected_missing = {f"{e.dataset}_train.tsv" for e in catalogue.entries("cot")} - served_cot
  assert len(failures) == len(expected_missing)
  assert all(any(m in f for f in failures) for m in expected_missing)
  for name in served_cot:
    assert (data / "cot" / name).read_bytes() == (_shared("flan_cot") / name).read_bytes()
  rows = eval_suites.tydiqa_rows("finnish", data)
  assert rows[0]["answers"] == ["Norge"]
  de = eval_suites.mgsm_rows("de", data)[0]
  assert de["targets"] == "2" and len(de["shots"]) == 8 and de["query"] == "Frage: 1 + 1?\nSchritt-für-Schritt-Antwort:"


def test_tasks_cli(niv2_checkout, capsys, monkeypatch):
  monkeypatch.delenv(catalogue.DATA_DIR_ENV, raising=False)  # restored after the test
  from flan_jax.tasks import tasks_cli as cli
  root, _ = niv2_checkout
  assert cli.main(["--data_dir", str(root), "count"]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert lines[-1] == f"total {80 + 193 + 1556 + 9}"
  assert cli.main(["list", "--collection", "cot"]) == 0
  assert capsys.readouterr().out.split() == [e.name for e in catalogue.entries("cot")]
  assert cli.main(["show", "muffin_rte", "--format", "zsopt", "--data_dir", str(root)]) == 0
  assert "OPTIONS:" in capsys.readouterr().out


@pytest.mark.slow
def test_tfds_converters_under_mock_data(tmp_path):
  """Every Muffin dataset with a TFDS converter: TFDS's mock examples (real feature specs,
  random values) convert to the family's fields, and the tasks render from the files."""
  tfds = pytest.importorskip("tensorflow_datasets")
  from flan_jax.tasks import prepare
  from flan_jax.tasks.collections import _register, families, tfds_converters
  converted = []
  with tfds.testing.mock_data(num_examples=6):
    for e in catalogue.entries("muffin"):
      if tfds_converters.converter_for(e) is None:
        continue
      counts = prepare.convert_tfds_task(e, tfds.builder(e.tfds_name, data_dir=str(tmp_path)),
                                         tmp_path)
      if counts["train"]:   # random labels can fall outside a few datasets' label sets
        converted.append(e)
  assert len(converted) >= 64
  names = _register.register_file_collection("muffin", data_dir=tmp_path)
  try:
    for e in converted:
      row = json.loads((tmp_path / "muffin" / e.name / "train.jsonl").read_text().split("\n")[0])
      fields = ("turns", "answer") if e.family == "dialog" else families.FIELDS[e.family]
      assert set(fields) <= set(row), (e.name, row)   # a dialog is its list of turns
      assert all(isinstance(row[k], list if k == "turns" else str) for k in fields)
      for fmt in (("zsopt", "fsopt") if e.family == "dialog" else ("zsopt", "fsnoopt")):
        assert f"{e.name}_{fmt}" in names
        # (TFDS's mock rows are long random strings: few-shot gets room for its exemplars)
        renderer, f = api.variant(f"{e.name}_{fmt}")
        r = next(iter(renderer.render("train", f, budget=1 << 20)), None)
        assert r is not None and r.inputs and r.targets, (e.name, fmt)  # (inversions ask for another field)
  finally:
    _register.register_file_collection("muffin")


def test_tfds_converters_on_hand_written_rows():
  from flan_jax.tasks.collections import tfds_converters as tc
  c = tc.CONVERTERS
  assert c["sentiment140"]({"text": "meh", "polarity": 2}, {}) is None  # neutral: no label
  assert c["sentiment140"]({"text": "great", "polarity": 4}, {})["answer"] == "positive"
  arc = {"question": "Q?", "choices": {"label": ["1", "2", "3"], "text": ["a", "b", "c"]},
         "answerKey": 1}
  assert c["ai2_arc/ARC-Easy"](arc, {"answerKey": list("ABCDE")})["answer"] == "b"
  arc["choices"]["label"] = ["A", "B", "C"]
  arc["answerKey"] = 2
  assert c["ai2_arc/ARC-Easy"](arc, {"answerKey": list("ABCDE")})["answer"] == "c"
  row = c["anli/r1"]({"context": "p", "hypothesis": "h", "label": 1}, {"label": ["e", "n", "c"]})
  assert row["answer"] == "it is not possible to tell" and len(row["options"]) == 3
  assert c["snli"]({"premise": "p", "hypothesis": "h", "label": -1},
                   {"label": ["entailment", "neutral", "contradiction"]}) is None
  assert c["lambada"]({"passage": "the cat sat"}, {}) == {"text": "the cat", "answer": "sat"}


def test_tfds_converters_for_the_datasets_flan_derived_or_filtered():
  """The Muffin tasks built from a TFDS dataset by FLAN's own derivation: sentence edits over
  ParaCrawl en-da (disjoint thirds), UnifiedQA's options, TriviaQA without Wikipedia pages,
  CoQA's question sequences, opinion abstracts and the two dialog datasets."""
  from flan_jax.tasks.collections import catalogue, tfds_converters as tc
  by_name = {e.dataset: e for e in catalogue.entries("muffin")}
  edits = [tc.converter_for(by_name[n]) for n in ("true_case", "fix_punct", "word_segment")]
  sentences = [f"Hello, World number {i}! It's Tuesday." for i in range(60)]
  rows = [[f({"en": t, "da": "x"}, {}) for t in sentences] for f in edits]
  # every sentence goes to exactly one of the three tasks, and each task gets some
  assert all(sum(r[i] is not None for r in rows) == 1 for i in range(60))
  assert all(any(r) for r in rows)
  tc_row, fp_row, ws_row = (next(x for x in r if x) for r in rows)
  # the input is the damaged sentence alone: the task's templates state the repair
  assert tc_row["text"] == tc_row["answer"].lower() and tc_row["answer"][0] == "H"
  assert fp_row["text"] == fp_row["answer"].replace(",", "").replace("!", "").replace(
      "'", "").replace(".", "") and "!" in fp_row["answer"]
  assert ws_row["text"] == ws_row["answer"].replace(" ", "")
  # a sentence the edit would not change is no example
  assert all(edits[0]({"en": f"plain words {i}", "da": ""}, {}) is None for i in range(30))
  uqa = tc.converter_for(by_name["unified_qa_science_inst"])
  row = uqa({"input": "Which is a gas? \\n (A) ice (B) steam (C) rock", "output": "steam"}, {})
  assert row == {"question": "Which is a gas?", "answer": "steam",
                 "options": ["ice", "steam", "rock"]}
  assert uqa({"input": "Q \\n (A) a (B) b", "output": "c"}, {}) is None
  tqa = tc.converter_for(by_name["trivia_qa_wiki_missing"])
  q = {"question": "Q?", "answer": {"value": "A"}, "entity_pages": {"title": []}}
  assert tqa(q, {}) == {"question": "Q?", "answer": "A"}
  assert tqa({**q, "entity_pages": {"title": ["Some page"]}}, {}) is None
  coqa = tc.converter_for(by_name["coqa"])({"story": "S", "questions": ["a?", "b?"],
                                             "answers": {"input_text": ["x", "y"]}}, {})
  assert coqa == {"context": "S", "question": "1. a?\n2. b?", "answer": "1. x\n2. y"}
  rt = tc.converter_for(by_name["opinion_abstracts_rotten_tomatoes"])(
      {"_movie_name": "the_film", "_critic_consensus": "Fine.",
       "_critics": {"key": ["k"] * 12, "value": [f"r{i}" for i in range(12)]}}, {})
  assert rt["answer"] == "Fine." and "the film" in rt["text"] and "10. r9" in rt["text"]
  assert "r10" not in rt["text"]
  # WikiDialog as FLAN builds it: a drawn odd turn among the first 20 is the target, the
  # turns before it the dialog, and the passage is not shown.
  wiki = tc.converter_for(by_name["wiki_dialog"])
  wd = wiki({"title": "T", "passage": "P", "utterances": ["u1", "u2", "u3"]}, {})
  assert wd == {"turns": ["u1"], "answer": "u2"}
  targets = set()
  for k in range(200):
    utterances = [f"d{k} u{t}" for t in range(30)]
    row = wiki({"title": "T", "passage": "Passage text", "utterances": utterances}, {})
    t = len(row["turns"])
    assert t % 2 == 1 and t < 20 and row["answer"] == utterances[t] and row["turns"] == utterances[:t]
    targets.add(t)
  assert targets == set(range(1, 20, 2))
  qr = tc.converter_for(by_name["qrecc"])({"context": ["q1", "a1"], "question": "q2",
                                           "answer": "a2"}, {})
  assert qr == {"turns": ["q1", "a1", "q2"], "answer": "a2"}


def test_prepare_t0sf_from_p3_rows(tmp_path, monkeypatch):
  """P3's schema (inputs/targets_pretokenized, answer_choices) -> per-task files whose
  rendered rows pass through unchanged; a config that cannot be fetched is reported."""
  datasets = pytest.importorskip("datasets")
  from flan_jax.tasks import prepare
  from flan_jax.tasks.collections import t0sf

  def fake_p3(config, cache_dir):
    if config.startswith("wiki_bio"):
      raise ConnectionError("offline")
    rows = [{"inputs_pretokenized": f"{config} prompt {i}\nYes or no? ",
             "targets_pretokenized": " yes" if i % 2 else " no",
             "answer_choices": ["yes", "no"]} for i in range(12)]
    split = {"train": datasets.Dataset.from_list(rows[:10])}
    if not config.startswith("app_reviews"):
      split["validation"] = datasets.Dataset.from_list(rows[10:])
    return datasets.DatasetDict(split)

  monkeypatch.setattr(prepare, "_load_p3", fake_p3)
  failures = prepare.prepare("t0sf", tmp_path)
  assert len(failures) == 5 and all("wiki_bio" in f and "offline" in f for f in failures)
  names = t0sf.register(data_dir=tmp_path)
  try:
    name = "t0sf_adversarial_qa_dbert_based_on"
    (zs,) = api.render_examples(f"{name}_zsnoopt", "validation", limit=1)
    # FLAN's T0 preprocessing: the prompt's line breaks become spaces; a T0 template wraps it.
    assert "adversarial_qa_dbert_based_on prompt 10 Yes or no?" in zs.inputs and "\nYes" not in zs.inputs
    assert zs.targets == "no"
    (opt,) = api.render_examples("t0sf_sciq_Direct_Question_zsopt", "validation", limit=1)
    assert opt.option_style and opt.inputs.index("yes") > opt.inputs.index("prompt 10")  # FLAN shows this prompt's options
    # This prompt lists its choices in its P3 text (FLAN's "t0_multiple_choice"): no second
    # list, and no "opt" variant that would repeat the "noopt" prompt.
    (own,) = api.render_examples("t0sf_cos_e_v1.11_description_question_option_text_zsnoopt",
                                 "validation", limit=1)
    assert "OPTIONS" not in own.inputs
    (own,) = api.render_examples("t0sf_cos_e_v1.11_description_question_option_text_zsopt",
                                 "validation", limit=1)
    assert "OPTIONS" not in own.inputs and "- yes" not in own.inputs
    fs = api.render_examples(f"{name}_fsnoopt", "validation", limit=1)[0]
    n = len(fs.exemplar_indices)  # 5 in FLAN's fixed-count format, 1-10 in its x-shot one
    assert n == (5 if fs.fewshot_mode == "fixed" else n) and fs.inputs.count("prompt") == n + 1
    # No validation split in P3: every 10th train row is held out.
    held = (tmp_path / "t0sf" / "t0sf_app_reviews_categorize_rating_using_review" /
            "validation.jsonl").read_text().splitlines()
    assert len(held) == 1 and "prompt 9" in held[0]
    assert f"{name}_fsnoopt" in names and f"{name}_fsopt" in names  # FLAN's four T0 formats
  finally:
    t0sf.register()


def test_every_catalogued_task_renders_in_each_format(tmp_path):
  """All 1,838 families x their formats, one example each, from fixture files in each
  collection's on-disk format (the benchmark's fixtures); few-shot prompts never hold
  the query itself."""
  import importlib.util
  from flan_jax.tasks.collections import cot, muffin, niv2, t0sf
  path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "mixture_build.py"
  spec = importlib.util.spec_from_file_location("mixture_build", path)
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)
  bench.write_fixtures(tmp_path, n_train=12, n_val=2)  # NIv2 holds out every 10th
  modules = (muffin, t0sf, niv2, cot)
  vocabulary, budget = vocab.default_vocabulary(), api.fewshot_budget()
  try:
    names = [n for m in modules for n in m.register(data_dir=tmp_path)]
    families = {api.get_task_info(n).name for n in names}
    assert len(families) == 80 + 193 + 1556 + 9
    for name in names:
      (r,) = api.render_examples(name, "validation", limit=1)
      assert r.inputs and r.targets, name
      if name.endswith(("_fsopt", "_fsnoopt", "_fscot")):
        assert r.exemplar_indices, name
        assert len(vocabulary.encode(r.inputs)) + 1 <= budget, name   # fits its budget
        if r.fewshot_mode in ("demonstrations", "instances"):  # NIv2: definition + examples
          continue
        # (an x-shot draw of no exemplar drops an example: compare the same example)
        zs = api.render_examples(name.replace("_fs", "_zs"), "validation",
                                 limit=r.index + 1)[r.index]
        # The query comes last, followed at most by the pattern's answer prefix: the zero-shot
        # prompt of the same example and template, its options in FLAN's few-shot "OPTIONS:"
        # block.
        renderer, fs_format = api.variant(name)
        example = next(itertools.islice(renderer.source.examples("validation"), r.index, None))
        query, _ = renderer._render_one(renderer.templates[zs.template_index], example, fs_format, name,  # pylint: disable=protected-access
                                        templates.FIXED_OPTIONS)  # (a dialog: the fixed "DIALOG:" list)
        assert r.inputs.count(query) == 1, name
        assert len(r.inputs) - r.inputs.index(query) - len(query) < 40, name
  finally:
    for m in modules:
      m.register()
