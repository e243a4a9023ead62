"""Flan 2022 rendering and mixing as FLAN's released v2 pipeline does it.

Reference numbers are re-typed from google-research/FLAN, flan/v2/: run_example.py (the
`flan2022_submix` rates), mixtures.py (caps, CoT : CoT-II rate), constants.py (few-shot
pruning length), constants_t0.py (which P3 prompts get an options block).
"""
import importlib.util
import json
import pathlib

import pytest
import seqio

from flan_jax.tasks import metrics
from flan_jax.tasks import api, templates, vocab
from flan_jax.tasks.collections import catalogue, families, readers

REPO = pathlib.Path(__file__).resolve().parents[1]

# flan/v2/run_example.py: seqio.MixtureRegistry.add('flan2022_submix', ...)
FLAN_SUBMIX_RATES = {"flan2021_submix": 0.4, "t0_submix": 0.32, "niv2_submix": 0.2,
                     "cot_submix": 0.05, "dialog_submix": 0.03}
# flan/v2/mixtures.py: DEFAULT_MIXTURE_MAX_EXAMPLES and the CoT / CoT-II rates.
FLAN_CAPS = {"FLAN": 30000, "T0": 20000, "CoT": 100000, "NIv2": 5000, "Dialog": 200000}
FLAN_COT_II_RATE = 0.3
# flan/v2/constants.py: FEW_SHOT_MAX_LEN, SEQUENCE_LEN['inputs'].
FLAN_FEW_SHOT_MAX_LEN, FLAN_INPUTS_LEN = 1920, 2048
OURS = {"flan2021_submix": "flan2022_flan2021", "t0_submix": "flan2022_t0sf",
        "niv2_submix": "flan2022_niv2", "cot_submix": "flan2022_cot",
        "dialog_submix": "flan2022_dialog"}


def _bench():
  spec = importlib.util.spec_from_file_location("mixture_build",
                                                REPO / "benchmarks" / "mixture_build.py")
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)
  return bench


@pytest.fixture
def register():
  names = []

  def _register(name, source, tmpls, **kwargs):
    out = api.register_flan_task("fid_" + name, source, tmpls, collection="test_fid", **kwargs)
    names.append("fid_" + name)
    return out

  yield _register
  for n in names:
    if n in api.list_tasks():
      api.remove_flan_task(n)


# --- the bugs ------------------------------------------------------------------------------


def test_inverted_templates_never_show_options():
  row = {"text": "great film", "premise": "p", "hypothesis": "h", "question": "q?",
         "answer": "yes", "options": ["yes", "no"]}
  seen = 0
  for family in ("classify", "nli", "mcqa"):
    for t in families.TEMPLATES[family]:
      inputs, target = templates.render(t, row, templates.ZSOPT, options=row["options"])
      if t.inverted:
        seen += 1
        assert "OPTIONS" not in inputs and "- no" not in inputs, (family, inputs)
        assert target != "yes"
      else:
        assert inputs.count("OPTIONS:\n- yes\n- no") == 1, (family, inputs)
  assert seen == 6


def test_p3_prompts_keep_only_their_own_choices():
  """FLAN appends options only to its 't0_multiple_choice_separated_options' prompts."""
  from flan_jax.tasks.collections import t0sf  # pylint: disable=unused-import  (registers)
  t0 = {e.name: e for e in catalogue.entries("t0sf")}
  assert sum(e.options for e in t0.values()) == 19
  assert t0["t0sf_sciq_Direct_Question"].options          # separated options
  assert not t0["t0sf_quail_no_prompt_text"].options      # lists its own choices
  assert not t0["t0sf_web_questions_get_the_answer"].options  # free-form QA
  # FLAN's T0 wrappers give every T0 task the four formats (options are shown only where
  # FLAN separates them).
  names = api.get_task_info("t0sf_quail_no_prompt_text").task_names
  assert sorted(names) == sorted(f"t0sf_quail_no_prompt_text_{f}"
                                 for f in ("zsopt", "zsnoopt", "fsopt", "fsnoopt"))


def test_t0_prompts_are_flattened_and_wrapped_in_ten_templates(tmp_path):
  """FLAN's T0 preprocessor turns the P3 prompt's line breaks into spaces, and its ten T0
  templates wrap it; the separated-options prompts show their choices in varied styles."""
  import collections
  from flan_jax.tasks.collections import _register
  prompts = {"t0sf_sciq_Direct_Question": True, "t0sf_quail_no_prompt_text": False}
  for name, separated in prompts.items():
    d = tmp_path / "t0sf" / name
    d.mkdir(parents=True)
    rows = [{"inputs": f"Passage {i}.\n\n\nQuestion {i}?\nPick:", "targets": f"ans {i}\n",
             "options": [f"ans {i}", f"other {i}"]} for i in range(220)]
    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:20]))
    (d / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[20:]))
  entries = [e for e in catalogue.entries("t0sf") if e.name in prompts]
  try:
    _register.register_entries(
        entries, lambda e: readers.P3TaskFilesSource(tmp_path, "t0sf", e.name, e.splits))
    for name, separated in prompts.items():
      zs = api.render_examples(f"{name}_zsopt", "validation", limit=200)
      assert len(zs) == 200 and len({r.template_index for r in zs}) == 10  # all ten wrappers
      wrapped = collections.Counter(r.inputs.split("Passage", 1)[0] + "|" + r.inputs.rsplit("Pick:", 1)[1][:12]
                                    for r in zs)
      assert len(wrapped) >= 10, wrapped
      for r in zs:
        body = f"Passage {r.index + 20}.   Question {r.index + 20}? Pick:"
        assert body in r.inputs, r.inputs        # the P3 text with its line breaks as spaces
        assert r.targets in (f"ans {r.index + 20}", "(A)", "A.", "A)", "[A]", "(a)", "a.", "1.", "(1)",
                             "1)", "[1]", "I.", "(i)", "i.")  # the target's line break dropped
      if separated:
        assert len({r.option_style for r in zs}) >= 5     # FLAN's non-deterministic options
      else:
        assert not any("other" in r.inputs for r in zs)   # this prompt lists its own choices
  finally:
    from flan_jax.tasks.collections import t0sf
    t0sf.register()


def test_long_documents_fewshot_keeps_the_whole_query(register):
  """Exemplars are added only while the whole prompt fits; an example with none is left
  out of the few-shot variant instead of being cut."""
  words = lambda n, tag: " ".join(f"{tag}{i}" for i in range(n))
  train = [{"doc": words(20 + 15 * (i % 5), f"t{i}w"), "answer": f"a{i}"} for i in range(30)]
  val = [{"doc": words(n, f"v{k}w"), "answer": f"b{k}"} for k, n in enumerate((10, 30, 400))]
  tmpl = [templates.Template("Summarize: {doc}", "{answer}"),
          templates.Template("{doc}\nTL;DR:", "{answer}")]
  budget = 400
  register("long", {"train": train, "validation": val}, tmpl, options_key="options",
           num_fewshot=5, xshot=True, max_input_tokens=budget)
  vocabulary = vocab.default_vocabulary()
  zs = api.render_examples("fid_long_zsnoopt", "validation")
  fs = api.render_examples("fid_long_fsnoopt", "validation")
  assert len(vocabulary.encode(zs[2].inputs)) + 1 > budget  # this query alone is too long
  assert [r.index for r in fs] == [0, 1]                     # ... so it has no few-shot form
  for r in fs:
    query = zs[r.index].inputs
    assert r.exemplar_indices and r.inputs.endswith(query), r.inputs[-80:]
    assert len(vocabulary.encode(r.inputs)) + 1 <= budget
  # FLAN's margin by default: 1,920 of a 2,048-token input, scaled with the run's length.
  assert api.fewshot_budget() == FLAN_FEW_SHOT_MAX_LEN
  assert api.fewshot_budget(512) == 512 * FLAN_FEW_SHOT_MAX_LEN // 2048


def test_extract_answer_reads_final_answer_phrases():
  assert metrics.extract_answer("3 + 4 = 7, so the final answer is 7.") == "7"
  assert metrics.extract_answer("... The final answer is 7", numeric=True) == "7"
  assert metrics.extract_answer("It is b. Therefore, the answer is (B).",
                                options=["x", "y"]) == "y"
  for phrase in families.COT_ANSWERS:  # every training phrasing reads back
    assert metrics.cot_answer(phrase.format(rationale="Because.", target="(C)")) == "(C)"


def test_option_less_tasks_do_not_duplicate_their_variants():
  from flan_jax.tasks import embedded
  name = embedded.TASK_PREFIX + "date_arithmetic"
  opt = api.render_examples(name + "_zsopt", "validation", limit=50)
  noopt = api.render_examples(name + "_zsnoopt", "validation", limit=50)
  assert all(a.inputs != b.inputs for a, b in zip(opt, noopt))
  assert {r.template_index for r in opt}.isdisjoint({r.template_index for r in noopt})
  # One template only: no "opt" variants at all.
  names = api.register_flan_task("fid_one", {"validation": [{"q": "x", "a": "y"}]},
                                 [templates.Template("{q}", "{a}")], splits=("validation",))
  try:
    assert names == ["fid_one_zsnoopt"]
  finally:
    api.remove_flan_task("fid_one")


def test_cot_trigger_and_eval_prompt_layouts(tmp_path):
  from flan_jax.tasks import eval_suites as es
  t = templates.Template("Q: {question}\nA:", "{answer}")
  train, _ = templates.render(t, {"question": "Is 3 odd?", "answer": "yes"}, templates.ZSCOT,
                              rationale="3 = 2 + 1.")
  bbh = "".join(es._bbh_parts("", [], "Is 3 odd?", cot=True)[::2])  # pylint: disable=protected-access
  assert train == bbh == "Q: Is 3 odd?\nA: Let's think step by step."
  # BBH exemplars keep the release's layout: trigger, line break, rationale lines.
  release = ("Sort words.\n\nQ: Sort: b a\nA: Let's think step by step.\nFirst letters: b, a.\n"
             "So: a b. So the answer is a b.\n\nQ: Sort: d c\nA: Let's think step by step.\n"
             "Two words.\nSo the answer is c d.")
  desc, shots = es.parse_cot_prompt(release)
  prefix, blocks, query = es._bbh_parts(desc, shots, "Sort: f e", cot=True)  # pylint: disable=protected-access
  assert prefix + "".join(blocks) + query == (
      release + "\n\nQ: Sort: f e\nA: Let's think step by step.")
  # MMLU CoT queries write their options inline, as mmlu-cot.json's exemplars do.
  from tests import test_eval_suites
  test_eval_suites._write_mmlu(tmp_path)  # pylint: disable=protected-access
  rows = es.mmlu_rows("anatomy", cot=True, data_dir=tmp_path)
  assert rows[1]["inputs"].endswith(
      "Q: test question 1, with \"quotes\"?\n(A) a1 (B) b1 (C) c1 (D) d1\n"
      "A: Let's think step by step.")


# --- options, few-shot patterns, holdouts --------------------------------------------------


def test_option_styles_vary_by_example_and_label_targets():
  styles = [templates.option_style(0, "task", k) for k in range(400)]
  assert len({s.header for s in styles}) >= 12 and "" in {s.header for s in styles}
  names = {s.name for s in styles}
  for kind in ("A.", "(A)", "a.", "1.", "(1)", "I.", "(i)", "dash", "star"):
    assert kind in names, kind
  assert styles == [templates.option_style(0, "task", k) for k in range(400)]  # by seed
  t = templates.Template("Pick: {q}{options}", "{answer}")
  row = {"q": "2+2?", "answer": "four"}
  paren = templates.OptionStyle("(A)", "Choices:", "({})", tuple("ABC"))
  text, target = templates.render(t, row, templates.ZSOPT, options=["three", "four"],
                                  style=paren)
  assert text == "Pick: 2+2?\n\nChoices:\n(A) three\n(B) four" and target == "(B)"
  inline = templates.OptionStyle("1.", "", "{}.", ("1", "2"), ";", newline=False)
  text, target = templates.render(t, row, templates.ZSOPT, options=["three", "four"],
                                  style=inline)
  assert text == "Pick: 2+2?\n\n1. three; 2. four;" and target == "2."
  bullets = templates.option_style(0, "task", next(k for k in range(400)
                                                   if not styles[k].labelled))
  assert templates.render(t, row, templates.ZSOPT, options=["three", "four"],
                          style=bullets)[1] == "four"


def test_fewshot_prompt_patterns_fixed_options_and_xshot(register):
  rows = [{"q": f"{i} or {i + 1}?", "answer": str(i + 1), "options": [str(i), str(i + 1)]}
          for i in range(40)]
  tmpl = [templates.Template("Which is bigger, {q}{options}", "{answer}")]
  register("pat", {"train": rows, "validation": rows[:30]}, tmpl, options_key="options",
           varied_options=True, xshot=True, num_fewshot=5,
           fewshot_patterns=families.FEWSHOT_PATTERNS["mcqa"])
  fs = api.render_examples("fid_pat_fsopt", "validation")
  modes = {r.fewshot_mode for r in fs}
  assert modes == {"fixed", "xshot"}
  assert all(len(r.exemplar_indices) == 5 for r in fs if r.fewshot_mode == "fixed")
  # One template: every one of FLAN's 25 x-shot candidates has the query's template.
  assert {len(r.exemplar_indices) for r in fs if r.fewshot_mode == "xshot"} == {25}
  prefixed = [r for r in fs if r.inputs.endswith(("A:", "Answer:", "Choice:"))]
  assert prefixed, "no prompt ends with its pattern's answer prefix"
  for r in fs:
    # FLAN's few-shot options: the fixed "OPTIONS:" list in every exemplar and the query, option
    # texts as targets, never a label.
    blocks = len(r.exemplar_indices) + 1
    assert r.inputs.count("OPTIONS:\n- ") == blocks, r.inputs
    assert r.targets == rows[r.index]["answer"] and r.option_style == "fixed" and not r.label_target
  zs = api.render_examples("fid_pat_zsopt", "validation")
  assert len({r.option_style for r in zs}) > 3  # zero-shot prompts vary the options' style


def _flan_xshot_counts(num_templates: int, num_queries: int, train_start: int) -> list[int]:
  """FLAN's x-shot rule re-typed over a stream: `batch_apply_template` (flan/v2/preprocessors.py)
  gives consecutive examples the templates 0..n-1 in turn; the x-shot task's
  `FewshotDataSource(num_shots=25)` (flan/v2/tasks.py) pairs each query with the next 25
  consecutive training exemplars; `prune_fewshot_examples_by_template_idx` keeps those with
  the query's template; `filter_zero_shot_in_few_shot` drops a query left with none (count 0).
  The training stream starts anywhere in its rotation (`train_start`: it is shuffled and repeated)."""
  counts = []
  for k in range(num_queries):
    query_template = k % num_templates                     # the queries rotate too
    window = [(train_start + 25 * k + d) % num_templates for d in range(25)]
    counts.append(sum(t == query_template for t in window))
  return counts


def test_xshot_counts_follow_flans_template_rotation(register):
  import collections
  import numpy as np
  from flan_jax.tasks import render
  for n in (1, 3, 8, 10, 30):  # one template, FLAN's ten, and more than 25
    # Every start of the rotation equally likely: the rule's exact proportions.
    flan = collections.Counter(c for start in range(n) for c in _flan_xshot_counts(n, 100, start))
    ours = collections.Counter(render.xshot_count(n, k % n, 0, "t", k) for k in range(6000))
    assert set(ours) == set(flan), (n, ours, flan)   # the same possible counts
    for count in flan:                                 # in the same proportions
      share = flan[count] / sum(flan.values())
      assert abs(ours[count] / 6000 - share) < 0.03, (n, count, ours, flan)
  # Ten templates: every count is 2 or 3 (no example dropped); the mean is 2.5.
  ten = [render.xshot_count(10, k % 10, 0, "t", k) for k in range(6000)]
  assert set(ten) == {2, 3} and abs(np.mean(ten) - 2.5) < 0.05
  # Rendered on a 10-template format: each x-shot prompt has exactly the rule's count, the
  # fixed-count "mix" prompts take the format's other templates, and a short task keeps its
  # zero-shot examples in x-shot form (nothing pruned here).
  rows = [{"q": f"{i} plus one?", "answer": str(i + 1), "options": [str(i + 1), str(i + 2)]} for i in range(240)]
  tmpl = [templates.Template(f"Q{k}: {{q}}{{options}}", "{answer}") for k in range(10)] + [
      templates.Template(f"Q{k}: {{q}}", "{answer}") for k in range(10, 20)]
  register("xs", {"train": rows[:60], "validation": rows[60:]}, tmpl, xshot=True,
           num_fewshot=5, options_key="options", num_opt_templates=10)
  zs = {r.index: r for r in api.render_examples("fid_xs_zsnoopt", "validation")}
  fs = {r.index: r for r in api.render_examples("fid_xs_fsnoopt", "validation")}
  assert {r.fewshot_mode for r in fs.values()} == {"xshot"}  # without options: x-shot only
  count = lambda i: render.xshot_count(10, zs[i].template_index - 10, 0, "fid_xs", f"validation:{i}")
  assert all(len(r.exemplar_indices) == count(r.index) in (2, 3) for r in fs.values())
  assert len(fs) >= 0.99 * len(zs)
  fsopt = api.render_examples("fid_xs_fsopt", "validation")
  modes = collections.Counter(r.fewshot_mode for r in fsopt)
  assert set(modes) == {"fixed", "xshot"} and abs(modes["fixed"] / len(fsopt) - 0.5) < 0.1
  for r in fsopt:
    if r.fewshot_mode == "fixed":  # five exemplars, in templates other than the query's
      own = f"Q{r.template_index}: "
      assert len(r.exemplar_indices) == 5 and r.inputs.count(own) == 1, r.inputs


def test_fewshot_budget_travels_with_the_task(register):
  vocabulary = vocab.default_vocabulary()
  rows = [{"doc": " ".join(f"w{i}x{j}" for j in range(8)), "answer": str(i)} for i in range(40)]
  tmpl = [templates.Template("Sum up: {doc}", "{answer}")]
  for name in ("b1", "b2"):
    register(name, {"train": rows, "validation": rows[:6]}, tmpl, num_fewshot=5)
  shots = lambda name: [len(r.exemplar_indices)
                        for r in api.render_examples(f"fid_{name}_fsnoopt", "validation")]
  assert shots("b1") == shots("b2") == [5] * 6
  renderer, fmt = api.variant("fid_b1_fsnoopt")
  budget = renderer.budget_for(256)  # what a run at inputs 256 fits its prompts to
  assert budget == 256 * FLAN_FEW_SHOT_MAX_LEN // FLAN_INPUTS_LEN
  small = list(renderer.render("validation", fmt, budget=budget))
  assert small and all(len(vocabulary.encode(r.inputs)) + 1 <= budget for r in small)
  assert max(len(r.exemplar_indices) for r in small) < 5
  # seqio asks for data with the run's lengths, and the prompts follow them.
  ds = seqio.get_mixture_or_task("fid_b1_fsnoopt").get_dataset(
      {"inputs": 256, "targets": 16}, split="validation", shuffle=False, trim_output_features=False)
  assert [x["inputs_pretokenized"].decode() for x in ds.as_numpy_iterator()] == [r.inputs for r in small]
  assert shots("b1") == shots("b2") == [5] * 6      # nothing about that request is kept
  register("b3", {"train": rows, "validation": rows[:6]}, tmpl, num_fewshot=5,
           inputs_length=256)                      # or set when the task is registered
  assert max(shots("b3")) < 5 and all(len(vocabulary.encode(r.inputs)) + 1 <= budget
                                      for r in api.render_examples("fid_b3_fsnoopt", "validation"))


def test_validation_holdouts_are_a_fixed_small_count(tmp_path):
  task = {"Definition": ["Copy."], "Positive Examples": [],
          "Instances": [{"id": str(i), "input": str(i), "output": [str(i)]} for i in range(500)]}
  path = tmp_path / "task1_copy.json"
  path.write_text(json.dumps(task))
  src = readers.NIv2TaskSource(path)
  assert (src.num_examples("validation"), src.num_examples("train")) == (10, 490)
  tsv = tmp_path / "x_train.tsv"
  tsv.write_text("".join(f"q{i}\ta{i}\tr{i}\n" for i in range(1000)))
  cot = readers.CotTsvSource(tsv)
  assert (cot.num_examples("validation"), cot.num_examples("train")) == (25, 975)


# --- the released mixture over the fixtures -----------------------------------------------


@pytest.fixture(scope="module")
def fixture_mixtures(tmp_path_factory):
  from flan_jax.tasks import mixtures
  from flan_jax.tasks.collections import cot, muffin, niv2, t0sf
  root = tmp_path_factory.mktemp("flan_data")
  _bench().write_fixtures(root)
  modules = (muffin, t0sf, niv2, cot)
  for m in modules:
    m.register(data_dir=root)
  mixtures.register_all()
  yield mixtures
  for m in modules:
    m.register()
  mixtures.register_all()


def test_released_rates_caps_and_cot(fixture_mixtures):
  m = fixture_mixtures
  caps = {"flan2021": "FLAN", "t0sf": "T0", "niv2": "NIv2", "cot": "CoT", "dialog": "Dialog"}
  assert {k: m.CAPS[k] for k in caps} == {k: FLAN_CAPS[v] for k, v in caps.items()}
  assert m.COT_INVERSION_RATE == FLAN_COT_II_RATE
  source = api.sampled_mixture("flan2022_submix")
  groups = source.groups()
  share = {}
  for name, rate in source.rated_members():
    share[groups[name]] = share.get(groups[name], 0.0) + rate
  total = sum(share.values())
  for flan_name, rate in FLAN_SUBMIX_RATES.items():
    assert share[OURS[flan_name]] / total == pytest.approx(rate / sum(
        FLAN_SUBMIX_RATES.values())), flan_name
  # CoT: every CoT variant trains with its rationale; inversions at 0.3 of CoT.
  cot = api.sampled_mixture("flan2022_cot").rated_members()
  inv = sum(r for n, r in cot if "_inversion_" in n)
  assert inv / (sum(r for _, r in cot) - inv) == pytest.approx(FLAN_COT_II_RATE)
  assert {n.rsplit("_", 1)[1] for n, _ in cot if "_inversion_" not in n} == {"zscot", "fscot"}
  assert m.TASK_COUNTS["flan2022_muffin"] == 80


@pytest.mark.slow
def test_data_stats_of_the_released_mixture(fixture_mixtures, capsys):
  from flan_jax.tasks import stats
  s = stats.mixture_stats("flan2022_submix", 20_000)  # the acceptance figure
  expected = {"flan2021": 40, "t0sf": 32, "niv2": 20, "cot": 5, "dialog": 3}
  for k, v in expected.items():
    assert abs(s["collections"][k] - v) <= 1.5, (k, s["collections"])
  assert s["rationale"] >= 4.5
  # FLAN's format submixtures at equal weight: Flan 2021 and T0-SF 25% per format, NIv2 and
  # dialog zero-/few-shot 50/50 (dialog: "opt" forms only).
  for collection in ("flan2021", "t0sf"):
    shares = s["collection_formats"][collection]
    assert set(shares) == {"zsopt", "fsopt", "zsnoopt", "fsnoopt"}, shares
    assert all(abs(v - 25) <= 1.5 for v in shares.values()), (collection, shares)
  niv2 = s["collection_formats"]["niv2"]
  zero = niv2.get("zsopt", 0) + niv2.get("zsnoopt", 0)
  assert abs(zero - 50) <= 1.5, niv2
  dialog = s["collection_formats"]["dialog"]
  assert set(dialog) == {"zsopt", "fsopt"} and abs(dialog["zsopt"] - 50) <= 4, dialog
  # T0's 19 separated-options prompts weigh as FLAN's rule gives them (9.8% of T0 here).
  assert abs(s["t0_separated_options"] - 9.8) <= 1, s["t0_separated_options"]
  # fs-opt is half five-shot "mix", half x-shot (so x-shot is 75% of few-shot); every draw
  # before length pruning is x-shot's 2 or 3 or five-shot's 5.
  for collection in ("flan2021", "t0sf"):
    modes = s["fsopt_modes"][collection]
    assert abs(modes["fixed"] - 50) <= 3, (collection, modes)
  assert s["fewshot_off_rule"] < 1, s["exemplars_drawn"]
  assert s["over_input_length"] == 0 and s["fewshot_over_budget"] == 0
  assert len(s["option_styles"]) >= 12
  assert s["zsopt_label_targets"] >= 30
  assert set(s["fewshot_modes"]) == {"fixed", "xshot", "demonstrations", "instances"}
  assert set(s["exemplars_drawn"]) <= {2, 3, 5}
  print("\n".join(stats.format_stats(s)))
  out = capsys.readouterr().out
  assert "collection  flan2021" in out and "item styles" in out


def test_every_muffin_dataset_has_templates_that_state_its_task():
  """Each of the 80 Muffin datasets maps to a group of "opt" and "noopt" templates plus
  inversions, reading only its dataset's fields, and renders ten of them (FLAN's count); a
  group is shared only by the datasets `SAME_TASK` lists as one task, and no two groups
  share a template."""
  from flan_jax.tasks.collections import muffin, muffin_templates  # pylint: disable=unused-import
  entries = catalogue.entries("muffin")
  assert len(entries) == 80 and {e.dataset for e in entries} == set(muffin_templates.DATASETS)
  users = {}
  for e in entries:
    sets = muffin_templates.DATASETS[e.dataset]
    users.setdefault(id(sets), set()).add(e.dataset)
    features = set(families.FIELDS[e.family])
    for kind in ("opt", "noopt"):
      plain = [t for t in sets[kind] if not t.inverted]
      assert len(plain) >= 6, (e.dataset, kind)
      for t in sets[kind]:
        assert set(t.fields) <= features, (e.dataset, t)
      assert len({t.inputs for t in sets[kind]}) == len(sets[kind]), (e.dataset, kind)
    if e.options:  # the "opt" set places the options; the "noopt" set never asks for them
      assert all("{options}" in t.inputs for t in sets["opt"] if not t.inverted), e.dataset
    assert all("{options}" not in t.inputs for t in sets["opt"] + sets["noopt"]
               if t.inverted or not e.options or t in sets["noopt"]), e.dataset
    assert not {t.inputs for t in sets["opt"]} & {t.inputs for t in sets["noopt"]}, e.dataset
    info = api.get_task_info(e.name)
    assert info.num_templates == 10 == len(set(muffin_templates.templates_of(e.dataset))), e.name
  shared = sorted(sorted(u) for u in users.values() if len(u) > 1)
  assert shared == sorted(sorted(g) for g in muffin_templates.SAME_TASK.values())
  assert len(users) == 80 - sum(len(g) - 1 for g in muffin_templates.SAME_TASK.values())
  owner = {}
  for key, datasets in users.items():
    sets = muffin_templates.DATASETS[next(iter(datasets))]
    for t in sets["opt"] + sets["noopt"] + sets.get("more_inversions", ()) + sets.get("reverse", ()):
      assert owner.setdefault(t.inputs, key) == key, (sorted(datasets), t.inputs)
  # Input inversions per dataset as FLAN's ten templates have them (flan/v2); translation
  # pairs also translate the other way in three of the ten.
  flan_inversions = {"anli_r1": 1, "rte": 1, "squad_v1": 2, "cnn_dailymail": 3,
                     "wmt16_translate_deen": 2, "trec": 1, "winogrande": 0, "cosmos_qa": 2,
                     "common_gen": 4, "stsb": 2}
  translation = set(muffin_templates.text.TRANSLATION["reverse"]) | {
      t for t in muffin_templates.text.TRANSLATION["opt"] + muffin_templates.text.TRANSLATION["noopt"] if t.inverted}
  for d, n in flan_inversions.items():
    ours = muffin_templates.templates_of(d)
    inverted = [t for t in ours if t.inverted and t not in translation]
    assert len(ours) == 10 and len(inverted) == n, (d, len(inverted))
  wmt = muffin_templates.templates_of("wmt16_translate_deen")
  assert sum(t in translation for t in wmt) == 3
  assert not any("unanswerable" in t.inputs or "cannot be answered" in t.inputs
                 for t in muffin_templates.templates_of("squad_v1"))  # v1 has no such questions
  # FLAN's v2 templates invert the CodeContests and DrRepair tasks (and dialog, as tasks of
  # their own: families.DIALOG_INVERSIONS): ours too.
  assert all(t.inverted and t.targets == "{text}" for t in families.DIALOG_INVERSIONS)
  for d in ("dmcc_python", "dr_repair_plain_code", "dr_repair_error_comments"):
    inverted = [t for t in muffin_templates.DATASETS[d]["noopt"] if t.inverted]
    assert inverted and all(t.targets == "{text}" for t in inverted), d
  row = {"premise": "A man eats.", "hypothesis": "Someone is eating.", "answer": "4"}
  text, target = templates.render(muffin_templates.STSB["noopt"][0], row, templates.ZSNOOPT)
  assert "0" in text and "5" in text and target == "4"  # the scale is stated
  row = {"text": "hello world", "source_lang": "English", "target_lang": "Czech",
         "answer": "ahoj svete"}
  for t in muffin_templates.DATASETS["wmt16_translate_csen"]["noopt"][:-1]:
    assert "Czech" in templates.render(t, row, templates.ZSNOOPT)[0], t  # the pair is named


@pytest.mark.slow
def test_data_stats_command_in_a_fresh_process(tmp_path):
  """The README's `flan-jax data stats` line, as a user runs it (small N)."""
  import os
  import subprocess
  import sys
  _bench().write_fixtures(tmp_path / "data", n_train=12, n_val=2)
  env = {**os.environ, "FLAN_JAX_DATA_DIR": str(tmp_path / "data")}
  out = subprocess.run([sys.executable, "-m", "flan_jax.cli", "data", "stats",
                        "flan2022_submix", "--n", "400"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  lines = out.stdout.splitlines()
  assert lines[0].startswith("flan2022_submix: 400 training examples")
  assert any(l.startswith("collection  flan2021") for l in lines)
  assert any("0 prompts over the input length" in l for l in lines)


def test_data_stats_names_an_unknown_mixture(capsys):
  from flan_jax.tasks import stats
  assert stats.main(["no_such_mix"]) == 2
  err = capsys.readouterr().err
  assert "'no_such_mix' is not a registered Flan mixture" in err and "flan2022_submix" in err


def test_niv2_fewshot_is_flans_two_kinds_at_equal_shares(register):
  """FLAN's NIv2 few-shot: half definition + one positive example with its explanation (10
  templates), half definition + two other instances without explanations (10 templates)."""
  import collections
  rows = [{"definition": "Name the parity of the number.", "input": str(i), "output": ["even", "odd"][i % 2],
           "positive_examples": [{"input": "2", "output": "even", "explanation": "2 is divisible by 2."}]}
          for i in range(1200)]
  register("niv2like", {"train": rows}, families.TEMPLATES["niv2"], formats=("fsnoopt",), splits=("train",),
           demonstrations_key="positive_examples", fewshot_templates=families.NIV2_FEWSHOT,
           instance_templates=families.NIV2_INSTANCES)
  fs = api.render_examples("fid_niv2like_fsnoopt", "train")
  kinds = collections.Counter(r.fewshot_mode for r in fs)
  assert set(kinds) == {"demonstrations", "instances"} and len(fs) == len(rows)
  assert abs(kinds["demonstrations"] / len(fs) - 0.5) <= 0.03, kinds
  assert len(families.NIV2_FEWSHOT) == len(families.NIV2_INSTANCES) == 10
  used = collections.Counter((r.fewshot_mode, r.template_index) for r in fs)
  assert len(used) == 20  # every template of both kinds in use
  for r in fs:
    explained = r.inputs.count("2 is divisible by 2.")
    assert explained == (1 if r.fewshot_mode == "demonstrations" else 0), r.inputs
    assert len(r.exemplar_indices) == (1 if r.fewshot_mode == "demonstrations" else 2)


def test_dialog_rows_and_layouts_are_flans(register):
  """FLAN's dialog tasks: the target is an odd turn among the first 20 (the converter's
  draw, tests/test_collections.py), the passage is not shown, zero-shot prompts vary the
  dialog's start string and speaker style, few-shot prompts use the fixed "DIALOG:" list."""
  from flan_jax.tasks.collections import muffin_templates, tfds_converters
  wiki = tfds_converters.CONVERTERS["wiki_dialog"]
  rows = [wiki({"title": f"Title {k}", "passage": f"Passage about thing {k}.",
                "utterances": [f"turn {t} of {k}" for t in range(24)]}, {}) for k in range(260)]
  register("dlg", {"train": rows[:60], "validation": rows[60:]},
           muffin_templates.templates_of("wiki_dialog"), xshot=True, num_fewshot=5,
           formats=("zsopt", "fsopt"), fewshot_patterns=families.FEWSHOT_PATTERNS["dialog"])
  zs = api.render_examples("fid_dlg_zsopt", "validation")
  assert len(zs) == 200
  layouts = set()
  for r in zs:
    assert "Passage about" not in r.inputs and "Title" not in r.inputs
    first = next(l for l in r.inputs.splitlines() if "turn 0 of" in l)
    start = r.inputs.splitlines()[r.inputs.splitlines().index(first) - 1] if r.inputs.index(first) else ""
    layouts.add((first.split("turn 0 of")[0], start if start.endswith(":") else ""))
  assert len(layouts) >= 10, layouts
  fs = api.render_examples("fid_dlg_fsopt", "validation", limit=50)
  assert fs and all(r.inputs.count("DIALOG:\n- turn 0 of") == len(r.exemplar_indices) + 1 for r in fs)


def test_cot_templates_triggers_and_inversion_directions():
  """FLAN's CoT: ten templates per dataset, each with its own trigger and answer phrase (at
  least five distinct triggers), and input inversions in four directions."""
  assert set(families.COT_TEMPLATES) == {e.dataset for e in catalogue.entries("cot")}
  for dataset, tmpls in families.COT_TEMPLATES.items():
    assert len(tmpls) >= 10 and len({t.inputs for t in tmpls}) == len(tmpls), dataset
    assert len({t.cot_trigger for t in tmpls}) >= 5, dataset
    assert len({t.cot_targets for t in tmpls}) >= 3, dataset
    for t in tmpls:  # every phrasing reads back as the answer
      _, target = templates.render(t, {"question": "2+2?", "answer": "4"}, templates.ZSCOT, rationale="2 and 2 make 4.")
      assert metrics.cot_answer(target) == "4", target
  row = {"question": "<q>", "answer": "<a>", "rationale": "<r>"}
  directions = set()
  for t in families.COT_INVERSION:
    inputs, target = templates.render(t, row, templates.ZSNOOPT)
    given = frozenset(f for f in ("<q>", "<a>", "<r>") if f in inputs)
    asked = frozenset(f for f in ("<q>", "<a>", "<r>") if f in target)
    assert t.inverted and not given & asked, t
    directions.add((given, asked))
  q, a, r = "<q>", "<a>", "<r>"
  assert directions == {(frozenset({r, a}), frozenset({q})), (frozenset({q, a}), frozenset({r})),
                        (frozenset({r}), frozenset({q, a})), (frozenset({a}), frozenset({q, r}))}
