"""The Flan 2022 mixtures and the README's "register a task" example."""
import json

import pytest
import seqio

from flan_jax.tasks import api


def test_readme_register_a_task(tmp_path):
  rows = [{"question": f"What is {i} plus {i}?", "answer": str(2 * i)} for i in range(20)]
  for split, part in (("train", rows[:16]), ("validation", rows[16:])):
    (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))

  # --- README snippet ---------------------------------------------------------------
  from flan_jax.tasks import api, templates

  doubling = [templates.Template("{question}", "{answer}"),
              templates.Template("Answer briefly: {question}", "{answer}")]
  names = api.register_flan_task(
      "my_doubling",
      {"train": str(tmp_path / "train.jsonl"),
       "validation": str(tmp_path / "validation.jsonl")},
      doubling, metrics=["exact_match"])
  api.register_mixture("my_mix", names, cap=1000)
  # ----------------------------------------------------------------------------------

  assert names == ["my_doubling_zsopt", "my_doubling_zsnoopt", "my_doubling_fsopt",
                   "my_doubling_fsnoopt"]
  ex = next(seqio.get_mixture_or_task("my_mix").get_dataset(
      {"inputs": 64, "targets": 8}, split="validation", shuffle=False).as_numpy_iterator())
  assert ex["inputs"].shape[0] <= 64


@pytest.fixture(scope="module")
def mixtures():
  from flan_jax.tasks import mixtures as m
  return m


def test_submixtures_and_scaling_are_registered(mixtures):
  names = set(seqio.MixtureRegistry.names())
  for n in ("flan2022_muffin", "flan2022_t0sf", "flan2022_cot", "flan_scaling_9_tasks",
            "flan_scaling_89_tasks", "flan_scaling_282_tasks",
            "flan_scaling_282_tasks_no_cot"):
    assert n in names, n
  assert mixtures.TASK_COUNTS["flan_scaling_282_tasks"] == 282
  assert mixtures.TASK_COUNTS["flan_scaling_282_tasks_no_cot"] == 273
  assert mixtures.RATES == {"muffin": 46.0, "t0sf": 27.9, "niv2": 24.2, "cot": 1.8}
  # Without an NIv2 listing the NIv2 mixtures are absent and say why.
  if "flan2022_niv2" not in names:
    assert "data prepare niv2" in mixtures.MISSING["flan2022_niv2"]
    assert "flan2022_submix" in mixtures.MISSING


def test_mixture_without_data_fails_when_built(mixtures, tmp_path, monkeypatch):
  from flan_jax.tasks.collections import cot
  cot.register(data_dir=tmp_path)
  mixtures.register_all()  # mixtures hold their Task objects: rebuild them after re-registering
  try:
    mix = seqio.get_mixture_or_task("flan2022_cot")
    with pytest.raises(FileNotFoundError, match=rf"task 'cot_\w+': no data at {tmp_path}"):
      mix.get_dataset({"inputs": 64, "targets": 64}, split="train")
  finally:
    cot.register()
    mixtures.register_all()
