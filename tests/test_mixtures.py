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
  names = set(seqio.TaskRegistry.names())  # sampled mixtures are single seqio Tasks
  for n in ("flan2022_muffin", "flan2022_t0sf", "flan2022_cot", "flan_scaling_9_tasks",
            "flan_scaling_89_tasks", "flan_scaling_282_tasks",
            "flan_scaling_282_tasks_no_cot"):
    assert n in names, n
  assert mixtures.TASK_COUNTS["flan_scaling_282_tasks"] == 282
  assert mixtures.TASK_COUNTS["flan_scaling_282_tasks_no_cot"] == 273
  assert mixtures.TASK_COUNTS["flan2022_muffin"] == 80  # dialog counted in Muffin's 80
  # FLAN's released membership, and the paper's as a variant of its own.
  assert mixtures.TASK_COUNTS["flan2022_dialog"] == 2 and mixtures.TASK_COUNTS["flan2022_dialog_paper"] == 3
  assert mixtures.TASK_COUNTS["flan2022_flan2021"] == 71 and mixtures.TASK_COUNTS["flan2022_flan2021_paper"] == 77
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


def test_sampled_mixture_draws_by_rate_and_nests(tmp_path):
  """Members are drawn in proportion to their rates; a nested sampled mixture gets its
  given share; the validation stream is finite and holds every example once."""
  from flan_jax.tasks import templates
  t = [templates.Template("{q}", "{a}")]
  for name, n in (("samp_a", 60), ("samp_b", 20), ("samp_c", 10)):
    rows = [{"q": f"{name} {i}", "a": str(i)} for i in range(n)]
    api.register_flan_task(name, {"train": rows, "validation": rows[:5]}, t,
                           formats=["zsnoopt"])
  api.register_sampled_mixture("samp_ab", ["samp_a_zsnoopt", "samp_b_zsnoopt"], cap=40)
  api.register_sampled_mixture("samp_all", [("samp_ab", 3.0), ("samp_c_zsnoopt", 1.0)])
  try:
    members = dict(api.sampled_mixture_members("samp_all"))
    # a: min(60, 40) = 40, b: 20 -> shares 2/3 and 1/3 of 3.0
    assert members == pytest.approx({"samp_a_zsnoopt": 2.0, "samp_b_zsnoopt": 1.0,
                                     "samp_c_zsnoopt": 1.0})
    task = seqio.get_mixture_or_task("samp_all")
    ds = task.get_dataset({"inputs": 16, "targets": 4}, split="train", shuffle=False, seed=3)
    vocab = task.output_features["inputs"].vocabulary
    counts = {"samp_a": 0, "samp_b": 0, "samp_c": 0}
    for ex in ds.take(2000).as_numpy_iterator():
      counts[vocab.decode(ex["inputs"].tolist()).split()[0]] += 1
    assert counts["samp_a"] / 2000 == pytest.approx(0.5, abs=0.04)
    assert counts["samp_b"] / 2000 == pytest.approx(0.25, abs=0.04)
    assert counts["samp_c"] / 2000 == pytest.approx(0.25, abs=0.04)
    val = [vocab.decode(ex["inputs"].tolist()) for ex in task.get_dataset(
        {"inputs": 16, "targets": 4}, split="validation", shuffle=False).as_numpy_iterator()]
    assert sorted(val) == sorted(f"{n} {i}" for n in counts for i in range(5))
  finally:
    for n in ("samp_all", "samp_ab"):
      seqio.TaskRegistry.remove(n)
    for n in ("samp_a", "samp_b", "samp_c"):
      api.remove_flan_task(n)


@pytest.mark.slow
def test_train_on_the_full_flan2022_mixture_from_gin(tmp_path):
  """`flan-jax train` on flan2022_submix (all 1,838 tasks) over fixture data: gin only."""
  import importlib.util
  import os
  import pathlib
  import subprocess
  import sys
  repo = pathlib.Path(__file__).resolve().parents[1]
  spec = importlib.util.spec_from_file_location("mixture_build",
                                                repo / "benchmarks" / "mixture_build.py")
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)
  bench.write_fixtures(tmp_path / "data")
  env = {**os.environ, "FLAN_JAX_DATA_DIR": str(tmp_path / "data")}
  out = subprocess.run(
      [sys.executable, "-m", "flan_jax.cli", "train", "--gin_file=gin/recipes/quickstart.gin",
       f"--gin.MODEL_DIR={tmp_path / 'run'}", "--gin.TRAIN_STEPS=2", "--gin.CHECKPOINT_PERIOD=2",
       "--gin.TASK_MODULES=['flan_jax.tasks.mixtures']",
       "--gin.MIXTURE_OR_TASK_NAME=flan2022_submix", "--gin.train.log_every=1"],
      cwd=repo, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "step      2/2" in out.stdout and (tmp_path / "run" / "checkpoints" / "2").is_dir()


def test_a_data_dir_reaches_the_mixtures_as_an_argument(mixtures, tmp_path, monkeypatch):
  """`--data_dir` / DATA_DIR: the task modules are registered with it (lookup.import_task_modules),
  never through the environment; the mixtures are rebuilt over the re-registered tasks."""
  import os
  from flan_jax.tasks import lookup
  from flan_jax.tasks.collections import catalogue
  monkeypatch.delenv(catalogue.DATA_DIR_ENV, raising=False)
  lookup.import_task_modules(["flan_jax.tasks.mixtures"], data_dir=str(tmp_path))
  try:
    assert catalogue.DATA_DIR_ENV not in os.environ
    mix = seqio.get_mixture_or_task("flan2022_cot")
    with pytest.raises(FileNotFoundError, match=rf"task 'cot_\w+': no data at {tmp_path}"):
      mix.get_dataset({"inputs": 64, "targets": 64}, split="train")
  finally:
    mixtures.register_all(data_dir=str(catalogue.data_dir()))
