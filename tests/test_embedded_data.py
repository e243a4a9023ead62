"""The embedded instruction tasks, their mixtures and the shipped default vocabulary."""
import itertools

import numpy as np
import pytest
import seqio
from sentencepiece import sentencepiece_model_pb2

from flan_jax.tasks import api, embedded, templates, vocab
from flan_jax.tasks import embedded_families as families

LENGTHS = {"inputs": 256, "targets": 64}
COT_FAMILIES = {"arithmetic", "boolean_expressions", "date_arithmetic"}
OPTION_FAMILIES = {"boolean_expressions", "compare_numbers"}


def _variants(family):
  formats = ["zsopt", "zsnoopt", "fsopt", "fsnoopt"]
  formats += ["zscot", "fscot"] if family in COT_FAMILIES else []
  return [f"{embedded.TASK_PREFIX}{family}_{f}" for f in formats]


def test_every_family_has_its_flan_variants():
  assert len(families.TRAIN_FAMILIES) >= 6 and len(families.HELDOUT_FAMILIES) == 2
  registered = set(seqio.TaskRegistry.names())
  for family in families.FAMILIES:
    names = _variants(family)
    assert set(names) <= registered, family
    info = api.get_task_info(embedded.TASK_PREFIX + family)
    assert list(info.task_names) == names
    assert info.collection == embedded.COLLECTION and info.splits == ("train", "validation")
    assert 4 <= info.num_templates <= 10
  assert len(api.list_tasks(embedded.COLLECTION)) == len(families.FAMILIES)


def test_heldout_families_are_only_in_the_heldout_mixture():
  train = {t.name for t in seqio.get_mixture_or_task(embedded.TRAIN_MIXTURE).tasks}
  heldout = {t.name for t in seqio.get_mixture_or_task(embedded.HELDOUT_MIXTURE).tasks}
  assert train == {n for f in families.TRAIN_FAMILIES for n in _variants(f.name)}
  assert heldout == {n for f in families.HELDOUT_FAMILIES for n in _variants(f.name)}
  assert not train & heldout


def test_generated_data_is_deterministic_and_splits_are_disjoint():
  for family in families.FAMILIES:
    train = families.examples(family, "train")
    validation = families.examples(family, "validation")
    assert (len(train), len(validation)) == (families.NUM_TRAIN, families.NUM_VALIDATION)
    assert train == families.examples(family, "train")
    keys = lambda rows: {repr(sorted(r.items())) for r in rows}  # noqa: E731
    assert not keys(train) & keys(validation), family
  # A different seed stream gives different data: the family name seeds each generator.
  assert families.examples("sort_words", "train")[:5] != families.examples(
      "sort_numbers", "train")[:5]


@pytest.mark.parametrize("family", sorted(families.FAMILIES))
def test_answers_are_correct_and_short(family):
  vocabulary = vocab.default_vocabulary()
  for ex in families.examples(family, "validation")[:100]:
    assert len(vocabulary.encode(ex["answer"])) < 20
    if family == "sort_words":
      assert ex["answer"].split() == sorted(ex["words"].split())
    elif family == "compare_numbers":
      assert ex["answer"] in ex["options"]
      pick = max if ex["relation"] == "largest" else min
      assert int(ex["answer"]) == pick(int(o) for o in ex["options"])
    elif family == "boolean_expressions":
      # "( ... )" and not/and/or are valid python with the same precedence.
      assert str(eval(ex["expression"])) == ex["answer"]  # pylint: disable=eval-used
    elif family == "arithmetic":
      last = ex["rationale"].split("=")[-1].strip(" .")
      assert last == ex["answer"]


def test_prompts_fit_the_sequence_lengths_and_options_follow_the_format():
  vocabulary = vocab.default_vocabulary()
  for name in api.list_tasks(embedded.COLLECTION, variants=True):
    family, fmt = name[len(embedded.TASK_PREFIX):].rsplit("_", 1)
    for r in api.render_examples(name, "validation", limit=20):
      assert len(vocabulary.encode(r.inputs)) + 1 <= LENGTHS["inputs"], name
      assert len(vocabulary.encode(r.targets)) + 1 <= LENGTHS["targets"], name
      has_options = templates.OPTIONS_HEADER in r.inputs
      assert has_options == (family in OPTION_FAMILIES and fmt != "zsnoopt"
                             and fmt != "fsnoopt"), (name, r.inputs)
      if fmt.startswith("fs"):
        assert len(r.exemplar_indices) >= 1, name
      if fmt.endswith("cot"):
        assert "So the answer is" in r.targets and templates.COT_TRIGGER in r.inputs


@pytest.mark.slow
def test_training_mixture_yields_tokenized_examples():
  vocabulary = vocab.default_vocabulary()
  mixture = seqio.get_mixture_or_task(embedded.TRAIN_MIXTURE)
  ds = mixture.get_dataset(sequence_length=LENGTHS, split="train", shuffle=False)
  rows = list(itertools.islice(ds.as_numpy_iterator(), 100))
  assert len(rows) == 100
  for row in rows:
    for key in ("inputs", "targets"):
      ids = row[key]
      assert ids.dtype == np.int32 and 1 < len(ids) <= LENGTHS[key]
      assert ids.max() < vocabulary.vocab_size and ids.min() > 0
      assert ids[-1] == vocab.EOS_ID and vocab.EOS_ID not in ids[:-1]
  # Examples come from several tasks, not just the first one.
  assert len({vocabulary.decode(r["inputs"].tolist())[:20] for r in rows}) > 20


def test_heldout_task_serves_validation():
  task = seqio.get_mixture_or_task(embedded.TASK_PREFIX + "date_arithmetic_fscot")
  ds = task.get_dataset(sequence_length=LENGTHS, split="validation", shuffle=False)
  rows = list(itertools.islice(ds.as_numpy_iterator(), 5))
  want = api.render_examples(task.name, "validation", limit=5)
  assert [r["targets_pretokenized"].decode() for r in rows] == [r.targets for r in want]
  assert all(r["inputs"][-1] == vocab.EOS_ID for r in rows)


def test_default_vocabulary():
  v = vocab.default_vocabulary()
  assert v is vocab.default_vocabulary()  # cached
  assert v.vocab_size == 2048
  assert (v.pad_id, v.eos_id, v.unk_id) == (0, 1, 2)
  assert vocab.DEFAULT_SPM_PATH.stat().st_size < 1_000_000
  text = "Sort these words: apple pear\n\nOPTIONS:\n- True\n- False"
  assert v.decode(v.encode(text)) == text
  assert "\n" in [v.tokenizer.id_to_piece(i) for i in v.encode(text)]
  # Byte fallback: text outside the training corpus encodes without <unk> and round-trips.
  unusual = "naïve café — 東京 ∑ 🙂"
  ids = v.encode(unusual)
  assert v.unk_id not in ids and v.decode(ids) == unusual
  assert len(v.encode("12345")) >= 5  # digits are split
  spec = sentencepiece_model_pb2.ModelProto.FromString(
      vocab.DEFAULT_SPM_PATH.read_bytes()).trainer_spec
  assert spec.byte_fallback and spec.split_digits and spec.bos_id == -1
