"""The FLAN task-building API (flan_jax.tasks.api) on small in-memory and file sources."""
import json

import numpy as np
import pytest
import seqio
import tensorflow as tf

from flan_jax.tasks import api, metrics, sources, templates, vocab
from flan_jax.tasks.templates import Template

PREFIX = "test_api_"
TEMPLATES = (
    Template("Which is bigger, {a} or {b}?{options}", "{answer}"),
    Template("Question: bigger of {a} and {b}{options}\nAnswer:", "{answer}"),
    Template("{a} vs {b}: pick the bigger one.", "{answer}"),  # options appended at the end
)


def _row(a, b):
  return {"a": str(a), "b": str(b), "options": [str(a), str(b)], "answer": str(max(a, b)),
          "rationale": f"{max(a, b)} is more than {min(a, b)}."}


TRAIN = [_row(a, a + d) for a in range(1, 11) for d in (1, 5)]    # 20 rows, a in 1..10
VALIDATION = [_row(a, a + 1) for a in range(1, 4)] + [_row(50, 60), _row(70, 75)]


@pytest.fixture
def register():
  """Registers test families with a unique prefix and removes them afterwards."""
  registered = []

  def _register(name, source=None, tmpls=TEMPLATES, **kwargs):
    source = source if source is not None else {"train": TRAIN, "validation": VALIDATION}
    names = api.register_flan_task(PREFIX + name, source, tmpls, collection="test_api",
                                   **kwargs)
    registered.append(PREFIX + name)
    return names

  yield _register
  for name in registered:
    if name in api.list_tasks():
      api.remove_flan_task(name)


def test_variant_names_follow_the_flan_scheme(register):
  full = register("cmp", options_key="options", rationale_key="rationale")
  assert full == [PREFIX + "cmp_" + f for f in
                  ("zsopt", "zsnoopt", "fsopt", "fsnoopt", "zscot", "fscot")]
  assert all(n in seqio.TaskRegistry.names() for n in full)
  assert register("plain") == [PREFIX + "plain_" + f for f in
                               ("zsopt", "zsnoopt", "fsopt", "fsnoopt")]
  # Without a train split there are no exemplars, so only zero-shot variants.
  assert register("zs_only", {"validation": VALIDATION}, splits=("validation",)) == [
      PREFIX + "zs_only_zsopt", PREFIX + "zs_only_zsnoopt"]
  with pytest.raises(ValueError, match="fsopt"):
    register("bad", {"validation": VALIDATION}, splits=("validation",), formats=["fsopt"])
  with pytest.raises(ValueError, match="no split"):
    register("bad2", {"validation": VALIDATION})


def test_options_only_in_opt_formats(register):
  register("opts", options_key="options", rationale_key="rationale")
  for fmt in ("zsopt", "fsopt", "zscot"):
    for r in api.render_examples(f"{PREFIX}opts_{fmt}", "validation"):
      assert templates.render_options(VALIDATION[r.index]["options"]) in r.inputs, (fmt, r)
  for fmt in ("zsnoopt", "fsnoopt"):
    for r in api.render_examples(f"{PREFIX}opts_{fmt}", "validation"):
      assert "OPTIONS" not in r.inputs and "\n- " not in r.inputs, (fmt, r.inputs)
  # `{options}` goes where the template says; without it the block is appended.
  row = VALIDATION[0]
  text, _ = templates.render(TEMPLATES[1], row, templates.ZSOPT, options=row["options"])
  assert text == "Question: bigger of 1 and 2\n\nOPTIONS:\n- 1\n- 2\nAnswer:"
  text, _ = templates.render(TEMPLATES[2], row, templates.ZSOPT, options=row["options"])
  assert text == "1 vs 2: pick the bigger one.\n\nOPTIONS:\n- 1\n- 2"
  text, _ = templates.render(TEMPLATES[2], row, templates.ZSNOOPT, options=row["options"])
  assert text == "1 vs 2: pick the bigger one."


def test_cot_format_renders_rationale_and_trigger(register):
  register("cot", options_key="options", rationale_key="rationale")
  r = api.render_examples(PREFIX + "cot_zscot", "validation", limit=1)[0]
  # The template ends with "Answer:", so the trigger follows it on the same line, as the
  # evaluation suites write "A: Let's think step by step.".
  assert r.inputs.endswith("\nAnswer: " + templates.COT_TRIGGER)
  assert templates.add_cot_trigger("Is 3 odd?") == "Is 3 odd?\n" + templates.COT_TRIGGER
  assert r.targets == "2 is more than 1. So the answer is 2."
  assert metrics.cot_answer(r.targets) == "2"
  task = seqio.get_mixture_or_task(PREFIX + "cot_zscot")
  assert task.postprocess_fn(r.targets.encode(), is_target=True) == "2"


def test_fewshot_exemplars_come_from_train_and_never_equal_the_query(register):
  # Validation rows 0-2 also occur in train (a, a+1 for a=1..3): they must not be their own
  # exemplar. A small train split makes collisions likely.
  register("fs", options_key="options")
  train_rendered = {}
  for t in TEMPLATES:
    for j, row in enumerate(TRAIN):
      train_rendered[(t.inputs, j)] = templates.render(t, row, templates.FSOPT,
                                                       options=row["options"])
  for split in ("validation", "train"):
    for r in api.render_examples(PREFIX + "fs_fsopt", split):
      template = TEMPLATES[r.template_index]
      assert len(r.exemplar_indices) == 3
      assert all(0 <= j < len(TRAIN) for j in r.exemplar_indices)
      if split == "train":
        assert r.index not in r.exemplar_indices
      rows = VALIDATION if split == "validation" else TRAIN
      query, _ = templates.render(template, rows[r.index], templates.FSOPT,
                                  options=rows[r.index]["options"])
      exemplars = [train_rendered[(template.inputs, j)] for j in r.exemplar_indices]
      assert r.inputs == templates.fewshot_prompt(exemplars, query)
      assert all(x != query for x, _ in exemplars)


def test_an_example_duplicated_in_train_is_never_its_own_exemplar(register):
  # The validation row also sits in train (index 0); 3 of 4 train rows are needed, so a
  # sampler that does not exclude it would pick it for most seeds.
  query = VALIDATION[0]
  train = [query, TRAIN[5], TRAIN[9], TRAIN[15]]
  for seed in range(8):
    register("dup", {"train": train, "validation": [query]}, seed=seed)
    r, = api.render_examples(PREFIX + "dup_fsnoopt", "validation")
    assert sorted(r.exemplar_indices) == [1, 2, 3], (seed, r)


def test_max_input_tokens_drops_exemplars_until_the_prompt_fits(register):
  vocabulary = vocab.default_vocabulary()
  register("fit", num_fewshot=3)
  full = api.render_examples(PREFIX + "fit_fsnoopt", "validation")
  register("fit", num_fewshot=3, max_input_tokens=40)
  cut = api.render_examples(PREFIX + "fit_fsnoopt", "validation")
  assert all(len(r.exemplar_indices) == 3 for r in full)
  assert all(len(vocabulary.encode(r.inputs)) + 1 > 40 for r in full)
  assert all(len(r.exemplar_indices) < 3 for r in cut)
  assert any(r.exemplar_indices for r in cut), "raise max_input_tokens so some exemplars fit"
  for r, f in zip(cut, full):
    if r.exemplar_indices:
      assert len(vocabulary.encode(r.inputs)) + 1 <= 40
      assert r.exemplar_indices == f.exemplar_indices[:len(r.exemplar_indices)]


def test_rendering_is_deterministic_per_seed(register):
  register("seed_a", seed=0, options_key="options")
  first = api.render_examples(PREFIX + "seed_a_fsnoopt", "train")
  register("seed_a", seed=0, options_key="options")  # re-registration replaces the old one
  again = api.render_examples(PREFIX + "seed_a_fsnoopt", "train")
  assert first == again
  register("seed_a", seed=1, options_key="options")
  other = api.render_examples(PREFIX + "seed_a_fsnoopt", "train")
  assert [r.template_index for r in first] != [r.template_index for r in other]
  assert len({r.template_index for r in first}) > 1, "every example got the same template"
  # The template choice is shared by all formats of one example.
  zs = api.render_examples(PREFIX + "seed_a_zsnoopt", "train")
  assert [r.template_index for r in zs] == [r.template_index for r in other]


def test_task_dataset_tokenizes_with_eos(register):
  register("ds")
  task = seqio.get_mixture_or_task(PREFIX + "ds_zsnoopt")
  assert set(task.output_features) == {"inputs", "targets"}
  assert all(f.add_eos for f in task.output_features.values())
  assert task.num_input_examples("train") == len(TRAIN)
  ds = task.get_dataset(sequence_length={"inputs": 64, "targets": 8}, split="validation",
                        shuffle=False)
  rows = list(ds.as_numpy_iterator())
  assert len(rows) == len(VALIDATION)
  expected = api.render_examples(PREFIX + "ds_zsnoopt", "validation")
  vocabulary = vocab.default_vocabulary()
  for row, r in zip(rows, expected):
    assert row["inputs_pretokenized"].decode() == r.inputs
    assert row["targets_pretokenized"].decode() == r.targets
    assert row["inputs"][-1] == vocab.EOS_ID and row["targets"][-1] == vocab.EOS_ID
    assert vocabulary.decode(row["targets"].tolist()) == r.targets
    assert row["inputs"].max() < vocabulary.vocab_size


def test_jsonl_and_tsv_file_sources(register, tmp_path):
  for split, rows in (("train", TRAIN), ("validation", VALIDATION)):
    with open(tmp_path / f"{split}.jsonl", "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in rows)
    with open(tmp_path / f"{split}.tsv", "w") as f:
      f.write("a\tb\toptions\tanswer\n")
      f.writelines(f"{r['a']}\t{r['b']}\t{'|'.join(r['options'])}\t{r['answer']}\n" for r in rows)
  jsonl = {s: str(tmp_path / f"{s}.jsonl") for s in ("train", "validation")}
  assert isinstance(sources.as_example_source(jsonl), sources.JsonlSource)
  register("jsonl", jsonl, options_key="options")
  register("mem", options_key="options")
  tsv = sources.TsvSource({s: tmp_path / f"{s}.tsv" for s in ("train", "validation")},
                          list_fields=["options"])
  register("tsv", tsv, options_key="options")
  for fmt in ("zsopt", "fsopt"):
    want = api.render_examples(f"{PREFIX}mem_{fmt}", "validation")
    # The template choice hashes the family name, so compare rendered text per template.
    for name in ("jsonl", "tsv"):
      got = api.render_examples(f"{PREFIX}{name}_{fmt}", "validation")
      assert [r.targets for r in got] == [r.targets for r in want]
      assert all("OPTIONS:\n- " in r.inputs for r in got)
  task = seqio.get_mixture_or_task(PREFIX + "jsonl_zsnoopt")
  ds = task.get_dataset(sequence_length={"inputs": 64, "targets": 8}, split="train",
                        shuffle=False)
  assert sum(1 for _ in ds) == len(TRAIN)


def test_malformed_inputs_raise_specific_errors(register, tmp_path):
  bad = tmp_path / "bad.jsonl"
  bad.write_text('{"a": "1"}\nnot json\n')
  with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
    list(sources.JsonlSource({"train": bad}).examples("train"))
  register("missing_field", tmpls=[Template("{nope}", "{answer}")])
  with pytest.raises(templates.TemplateError, match=r"needs field 'nope'.*'answer'"):
    api.render_examples(PREFIX + "missing_field_zsnoopt", "validation", limit=1)
  with pytest.raises(templates.TemplateError, match="cot_targets"):
    Template("{x}", "{y}", cot_targets="{reasoning} so {y}")
  with pytest.raises(templates.TemplateError, match="cannot parse"):
    Template("{x", "{y}")
  with pytest.raises(TypeError, match="generator object"):
    sources.InMemorySource({"train": (r for r in TRAIN)})
  with pytest.raises(KeyError, match="no FLAN task"):
    api.get_task_info("no_such_task_anywhere")


def test_seqio_function_data_source(register):
  def dataset_fn(split, shuffle_files, seed=None):
    del shuffle_files, seed
    rows = TRAIN if split == "train" else VALIDATION
    return tf.data.Dataset.from_tensor_slices(
        {k: [r[k] for r in rows] for k in ("a", "b", "answer")})

  source = seqio.FunctionDataSource(dataset_fn, splits=("train", "validation"))
  register("fn", source)
  got = api.render_examples(PREFIX + "fn_fsnoopt", "validation")
  assert [r.targets for r in got] == [r["answer"] for r in VALIDATION]
  assert all(len(r.exemplar_indices) == 3 for r in got)


def test_catalogue_and_mixture_rates(register):
  register("cat_a", category="comparison", metrics=("accuracy",), rationale_key="rationale")
  register("cat_b", {"train": TRAIN[:7], "validation": VALIDATION})
  info = api.get_task_info(PREFIX + "cat_a_fscot")  # a variant name finds its family
  assert info.name == PREFIX + "cat_a" and info.category == "comparison"
  assert info.metrics == ("accuracy",) and "zscot" in info.formats
  assert info.splits == ("train", "validation") and info.num_templates == len(TEMPLATES)
  assert api.list_tasks("test_api") == [PREFIX + "cat_a", PREFIX + "cat_b"]
  assert PREFIX + "cat_b_fsopt" in api.list_tasks("test_api", variants=True)

  mixture = api.register_mixture(
      PREFIX + "mix", [PREFIX + "cat_a_zsopt", PREFIX + "cat_b_zsopt"], cap=10)
  rates = {t.name: mixture.get_rate(t) for t in mixture.tasks}
  assert rates == {PREFIX + "cat_a_zsopt": 10.0, PREFIX + "cat_b_zsopt": 7.0}  # min(n, cap)
  constant = api.register_mixture(PREFIX + "mix", [PREFIX + "cat_a_zsopt"], default_rate=2.0)
  assert constant.get_rate(constant.tasks[0]) == 2.0
  with pytest.raises(ValueError, match="unregistered"):
    api.register_mixture(PREFIX + "mix2", ["no_such_task_zsopt"])
  seqio.MixtureRegistry.remove(PREFIX + "mix")


def test_metrics():
  assert metrics.exact_match(["4", "Yes."], ["4", "yes"]) == {"exact_match": 100.0}
  assert metrics.accuracy(["a", "b"], ["a", "c"]) == {"accuracy": 50.0}
  assert metrics.cot_answer("3 + 4 = 7. So the answer is 7.") == "7"
  assert metrics.cot_answer(b"no phrase here") == "no phrase here"
  assert templates.stable_hash(0, "x", 1) == templates.stable_hash(0, "x", 1)
  assert templates.stable_hash(0, "x", 1) != templates.stable_hash(1, "x", 1)
  assert np.int64(templates.stable_hash("a")) >= 0


# ---------------------------------------------------------------------------------------
# One naming story: names listed are names accepted; `flan-jax tasks show` without tracebacks.


def test_a_family_name_is_the_mixture_of_its_formats_at_equal_rates(register):
  from flan_jax.tasks import lookup
  names = register("fam", rationale_key="rationale")
  mixture = lookup.get_mixture_or_task(PREFIX + "fam")
  assert {t.name: mixture.get_rate(t) for t in mixture.tasks} == {n: 1.0 for n in names}
  assert PREFIX + "fam" not in api.list_mixtures()   # mixtures list the real ones, not per-family ones
  assert lookup.expand_tasks([PREFIX + "fam"]) == sorted(names)  # eval takes family names too
  register("fam")  # re-registering (now without CoT) replaces the family's mixture too
  assert {t.name for t in lookup.get_mixture_or_task(PREFIX + "fam").tasks} == {
      PREFIX + "fam_" + f for f in ("zsopt", "zsnoopt", "fsopt", "fsnoopt")}


def test_unknown_names_suggest_accepted_names(register, monkeypatch):
  from flan_jax.tasks import lookup
  register("bigger")
  accepted = [PREFIX + "bigger", PREFIX + "bigger_zsopt", "flan_jax_embedded"]
  monkeypatch.setattr(api, "accepted_names", lambda: accepted)
  with pytest.raises(ValueError) as e:
    lookup.get_mixture_or_task(PREFIX + "biger")
  assert str(e.value) == (
      f"unknown task or mixture '{PREFIX}biger' (gin: MIXTURE_OR_TASK_NAME). Did you mean: {PREFIX}bigger, "
      f"{PREFIX}bigger_zsopt? Accepted: a task family (`flan-jax tasks list`; `--all` adds the embedded ones), "
      "a mixture (`flan-jax tasks list --mixtures`), or a family's format variant "
      "FAMILY_zsopt/_zsnoopt/_fsopt/_fsnoopt/_zscot/_fscot; the modules in TASK_MODULES register 3 names.")
  # A Flan 2022 task whose collection module is not imported: say which module registers it.
  assert lookup.unknown_task_message("muffin_anli_r1_zsopt") == (
      "unknown task or mixture 'muffin_anli_r1_zsopt' (gin: MIXTURE_OR_TASK_NAME). 'muffin_anli_r1' is a "
      "Flan 2022 task (muffin) whose module is not imported: add 'flan_jax.tasks.mixtures' to TASK_MODULES, e.g. "
      "--gin.TASK_MODULES=\"['flan_jax.tasks.embedded', 'flan_jax.tasks.mixtures']\". Accepted: a task family "
      "(`flan-jax tasks list`; `--all` adds the embedded ones), a mixture (`flan-jax tasks list --mixtures`), or "
      "a family's format variant FAMILY_zsopt/_zsnoopt/_fsopt/_fsnoopt/_zscot/_fscot; the modules in "
      "TASK_MODULES register 3 names.")


def test_tasks_list_mixtures_and_all_are_accepted_names(capsys, tmp_path, monkeypatch):
  from flan_jax.tasks import lookup
  from flan_jax.tasks import tasks_cli as cli
  from flan_jax.tasks.collections import catalogue
  monkeypatch.setenv(catalogue.DATA_DIR_ENV, str(tmp_path))
  assert cli.main(["list", "--mixtures"]) == 0
  mixtures = capsys.readouterr().out.split()
  assert {"flan2022_submix", "flan_scaling_89_tasks_no_cot", "flan_jax_embedded", "mini_scaling_1_families"} <= set(
      mixtures)
  assert "muffin_anli_r1" not in mixtures
  assert cli.main(["list", "--all"]) == 0
  everything = capsys.readouterr().out.split()
  assert everything[:3] == [e.name for e in catalogue.entries()][:3]
  assert set(mixtures) <= set(everything)
  assert {"muffin_anli_r1", "cot_gsm8k", "embedded_arithmetic", "embedded_date_arithmetic"} <= set(everything)
  for name in ("muffin_anli_r1", "niv2_task001_quoref_question_generation", "embedded_arithmetic", "flan2022_cot"):
    assert lookup.get_mixture_or_task(name).name == name


@pytest.mark.parametrize("argv,error", [
    (["show", "embedded_sort_words", "--format", "zscot"],
     "embedded_sort_words has no zscot format (it has no rationales, so no CoT formats); its formats: zsopt, "
     "zsnoopt, fsopt, fsnoopt"),
    (["show", "muffin_anli_r1", "--format", "zsopts"],
     "unknown format 'zsopts'; the FLAN formats are zsopt, zsnoopt, fsopt, fsnoopt, zscot, fscot"),
    (["show", "muffin_anli_r1_zsopt", "--format", "fsopt"],
     "'muffin_anli_r1_zsopt' is the zsopt variant of muffin_anli_r1, but --format=fsopt; give one of them"),
    (["show", "muffin_anli_r9"],
     "no task 'muffin_anli_r9' in the Flan 2022 catalogue or the embedded tasks. Did you mean: muffin_anli_r3, "
     "muffin_anli_r2, muffin_anli_r1, muffin_wnli, muffin_snli? `flan-jax tasks list --all` lists the names"),
])
def test_tasks_show_explains_bad_names_and_formats(argv, error, capsys, tmp_path, monkeypatch):
  from flan_jax import cli as flan_cli
  from flan_jax.tasks.collections import catalogue
  monkeypatch.setenv(catalogue.DATA_DIR_ENV, str(tmp_path))
  assert flan_cli.main(["tasks", *argv]) == 2
  assert capsys.readouterr().err == f"flan-jax tasks: error: {error}\n"


@pytest.mark.parametrize("argv,header", [
    (["show", "muffin_anli_r1_zsopt"], "[muffin_anli_r1_zsopt: no data"),          # a variant name
    (["show", "task001_quoref_question_generation", "--format", "fsopt"],           # the paper's NIv2 spelling
     "[niv2_task001_quoref_question_generation_fsopt: no data"),
    (["show", "embedded_arithmetic", "--format", "fscot"], "[embedded_arithmetic_fscot validation #0, template"),
    (["show", "cot_gsm8k_inversion"], "[cot_gsm8k_inversion_zsopt: no data"),       # a CoT inversion (CoT-II)
])
def test_tasks_show_variants_embedded_tasks_and_niv2_spelling(argv, header, capsys, tmp_path, monkeypatch):
  from flan_jax.tasks import tasks_cli as cli
  from flan_jax.tasks.collections import catalogue, muffin, niv2
  monkeypatch.setenv(catalogue.DATA_DIR_ENV, str(tmp_path))
  # Registrations are process-wide: another test of this worker may have registered these
  # collections over its own data directory (one holds a broken NIv2 file on purpose).
  muffin.register(data_dir=tmp_path)
  niv2.register(data_dir=tmp_path)
  try:
    assert cli.main(argv) == 0
  finally:
    monkeypatch.undo()  # the default data directory again, for later tests of this worker
    muffin.register()
    niv2.register()
  lines = capsys.readouterr().out.splitlines()
  family = header[1:].split("_zsopt")[0].split("_fsopt")[0].split("_fscot")[0]
  assert lines[0].startswith(f"# {family}: ")
  assert lines[1].startswith(header), lines[:3]
  assert any(line.startswith("-> ") for line in lines)


def test_a_task_module_that_is_nowhere_is_named_with_where_it_was_looked_for():
  import os
  from flan_jax.tasks import lookup
  with pytest.raises(ValueError) as e:
    lookup.import_task_modules(["flan_jax.tasks.embedded", "no_such_task_module"])
  assert str(e.value) == ("cannot import task module 'no_such_task_module' (gin: TASK_MODULES): No module named "
                          f"'no_such_task_module' (looked on sys.path and in the working directory {os.getcwd()})")
