"""`flan-jax data cache --engine=beam`: the same cache as the local command, built by an Apache
Beam pipeline (DirectRunner in this process; Dataflow/Flink/Spark take the same pipeline)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

beam = pytest.importorskip("apache_beam")

from flan_jax.tasks import data_cli
from flan_jax.tasks import cache, cache_beam, prepare, storage  # noqa: E402
from flan_jax.tasks import cache_reader
from tests import test_data_cache  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENGTHS = {"inputs": 256, "targets": 32}
MIXTURE = "beam_test_embedded_and_cot"


@pytest.fixture(scope="module")
def cot_data(tmp_path_factory):
  """`data prepare cot` into a local data dir; the CoT tasks and Flan mixtures registered over it."""
  from flan_jax.tasks import mixtures
  from flan_jax.tasks.collections import cot
  release = test_data_cache.write_cot_release(tmp_path_factory.mktemp("cot_release"))
  data = tmp_path_factory.mktemp("data")
  saved = prepare.COT_URL
  prepare.COT_URL = release.as_uri()
  try:
    assert data_cli.main(["prepare", "cot", f"--data_dir={data}"]) == 0
  finally:
    prepare.COT_URL = saved
  cot.register(data_dir=str(data))
  mixtures.register_all()
  yield data
  cot.register()
  mixtures.register_all()


def _files(root):
  root = storage.path(root)
  return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def both(cot_data, tmp_path_factory):
  """Three embedded variants and a few-shot CoT task (a seqio Mixture), and the sampled
  flan2022_cot mixture, each cached by the local command and by Beam at inputs 256."""
  from flan_jax.tasks import api, embedded  # noqa: F401  (registers the embedded tasks)
  api.register_mixture(MIXTURE, ["embedded_sort_numbers_zsopt", "embedded_arithmetic_fsnoopt",
                                 "embedded_date_arithmetic_zscot", "cot_gsm8k_fscot"], default_rate=1.0)
  root = tmp_path_factory.mktemp("caches")
  out = {}
  for engine in ("local", "beam"):
    d = root / engine
    for name in (MIXTURE, "flan2022_cot"):
      if engine == "local":
        cache.build(name, d, lengths=LENGTHS, num_shards=2, say=lambda *a: None)
      else:
        cache_beam.build(name, d, lengths=LENGTHS, num_shards=2, data_dir=str(cot_data), say=lambda *a: None)
    out[engine] = d
  return out


@pytest.mark.slow
def test_beam_writes_the_local_commands_cache_file_for_file(both):
  local, beamed = _files(both["local"]), _files(both["beam"])
  assert sorted(local) == sorted(beamed)
  assert local == beamed                                     # shards, counts, info, stats, manifests
  manifest = json.loads(beamed[f"{MIXTURE}/flan_jax_cache.train.json"])
  assert manifest["task_feature_lengths"] == LENGTHS and manifest["fewshot_budget"] == 240
  assert all(n > 0 for n in manifest["examples"].values()) and len(manifest["examples"]) == 4
  info = json.loads(beamed["cot_gsm8k_fscot/info.train.json"])
  assert info["flan_jax"]["task_feature_lengths"] == LENGTHS    # the block USE_CACHED_TASKS checks
  assert "COMPLETED.train" in {k.split("/")[-1] for k in beamed}


@pytest.mark.slow
def test_batches_from_the_beam_cache_equal_the_local_caches(both):
  for name in (MIXTURE, "flan2022_cot"):
    a = test_data_cache._batches(name, True, [str(both["local"])], 20, lengths=LENGTHS)
    b = test_data_cache._batches(name, True, [str(both["beam"])], 20, lengths=LENGTHS)
    for i, (x, y) in enumerate(zip(a, b)):
      for k in x:
        np.testing.assert_array_equal(x[k], y[k], err_msg=f"{name} batch {i} {k}")


def test_a_rerun_keeps_finished_work_and_a_second_split_shares_the_directory(both, cot_data):
  lines = []
  cache_beam.build("flan2022_cot", both["beam"], lengths=LENGTHS, num_shards=2, data_dir=str(cot_data),
                   say=lines.append)
  assert "108 shard(s) already complete" in lines[0]
  # A validation build into the same --out as the train one: both splits live side by side.
  assert data_cli.main(["cache", "cot_gsm8k_zscot", f"--out={both['beam']}", "--split=validation",
                       "--inputs_length=256", "--targets_length=32", "--shards=2",
                       f"--data_dir={cot_data}"]) == 0
  d = storage.path(both["beam"]) / "cot_gsm8k_zscot"
  assert cache_reader.completed(d, "train") and cache_reader.completed(d, "validation")
  assert (d / "info.validation.json").exists() and (d / "info.train.json").exists()


@pytest.mark.slow
def test_train_reads_the_beam_cache(both, cot_data, tmp_path):
  model_dir = tmp_path / "run"
  proc = subprocess.run(
      [sys.executable, "-m", "flan_jax.cli", "train", "--gin_file=gin/recipes/quickstart.gin",
       f"--gin.MODEL_DIR='{model_dir}'", "--gin.MIXTURE_OR_TASK_NAME='flan2022_cot'",
       "--gin.train.task_modules=['flan_jax.tasks.mixtures']", f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}",
       "--gin.BATCH_SIZE=8", "--gin.TRAIN_STEPS=3", "--gin.USE_CACHED_TASKS=True",
       f"--gin.train.seqio_cache_dirs=['{both['beam']}']"],
      cwd=REPO, capture_output=True, text=True, timeout=600,
      env=dict(os.environ, FLAN_JAX_DATA_DIR=str(cot_data), XLA_FLAGS="--xla_force_host_platform_device_count=1"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert len((model_dir / "train_metrics.jsonl").read_text().splitlines()) >= 1


def test_dry_run_prints_the_dataflow_pipeline_and_submits_nothing(capsys, tmp_path):
  from flan_jax.tasks import embedded  # noqa: F401
  argv = ["cache", "flan_jax_embedded", "--out=gs://flan-bucket/cache", "--shards=8", "--engine=beam", "--dry_run",
          "--runner=DataflowRunner", "--project=my-project", "--region=us-central1",
          "--temp_location=gs://flan-bucket/tmp", "--setup_file=./setup.py", "--num_workers=20"]
  assert data_cli.main(argv) == 0
  out = capsys.readouterr().out
  assert "224 work item(s) (28 member(s) x 8 shard(s)" in out and "runner DataflowRunner" in out
  assert ("pipeline: WorkItems -> Reshuffle -> RenderTokenizeWrite -> FinishedMembers -> Both -> ByMember -> "
          "FinishMember -> Totals -> WriteManifest") in out
  for option in ("--project=my-project", "--region=us-central1", "--temp_location=gs://flan-bucket/tmp",
                 "--num_workers=20", "--setup_file=./setup.py"):
    assert option in out
  # Refusals name what is missing; nothing is submitted.
  assert data_cli.main(argv[:6] + ["--runner=DataflowRunner", "--project=p"]) == 2
  assert "--runner=DataflowRunner needs --region, --temp_location" in capsys.readouterr().err
  assert data_cli.main(["cache", "flan_jax_embedded", f"--out={tmp_path}", "--engine=beam", "--dry_run",
                       "--runner=DataflowRunner", "--project=p", "--region=r", "--temp_location=gs://b/t"]) == 2
  assert "DataflowRunner workers cannot read this machine's paths (--out" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    data_cli.main(["cache", "flan_jax_embedded", f"--out={tmp_path}", "--runner=DataflowRunner"])
  assert "Beam pipeline options need --engine=beam" in capsys.readouterr().err
