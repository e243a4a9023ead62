"""Flan data in object storage and the preprocessing cache (`flan-jax data prepare|cache`,
USE_CACHED_TASKS), through URLs: TensorFlow's in-process `ram://` filesystem in this process,
`file://` URLs (the same tf.io.gfile code path as gs://) where other processes must see the files."""
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from flan_jax.tasks import data_cli
from flan_jax.tasks import cache, prepare, storage
from flan_jax.tasks import cache_reader

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENGTHS = {"inputs": 128, "targets": 32}
COT_ROWS = 40


def write_cot_release(root: pathlib.Path) -> pathlib.Path:
  """Flan CoT TSVs (question, answer, rationale) for the nine datasets, as the FLAN repository
  serves them; `data prepare cot` downloads them from here (a file:// URL)."""
  from flan_jax.tasks.collections import catalogue
  root.mkdir(parents=True, exist_ok=True)
  for e in catalogue.entries("cot"):
    (root / f"{e.dataset}_train.tsv").write_text("".join(
        f"{e.dataset}: what is {i} + 1?\t{i + 1}\t{i} plus one is {i + 1}.\n" for i in range(COT_ROWS)))
  return root


@pytest.fixture(scope="module")
def ram_cot(tmp_path_factory):
  """`data prepare cot` into ram://, the CoT tasks and mixtures registered over it; the
  default registration again afterwards."""
  from flan_jax.tasks import mixtures
  from flan_jax.tasks.collections import cot
  release = write_cot_release(tmp_path_factory.mktemp("cot_release"))
  url, saved = "ram://flan_test/data", prepare.COT_URL
  prepare.COT_URL = release.as_uri()
  try:
    assert data_cli.main(["prepare", "cot", f"--data_dir={url}"]) == 0
  finally:
    prepare.COT_URL = saved
  cot.register(data_dir=url)
  mixtures.register_all()
  yield url
  cot.register()
  mixtures.register_all()


def test_prepare_cot_into_object_storage_and_read_from_there(ram_cot, capsys, monkeypatch):
  from flan_jax.tasks import api
  from flan_jax.tasks import tasks_cli
  from flan_jax.tasks.collections import catalogue
  root = catalogue.data_dir(ram_cot)
  assert isinstance(root, storage.UrlPath) and str(root) == ram_cot
  names = sorted(p.name for p in (root / "cot").iterdir())
  assert names == sorted(f"{e.dataset}_train.tsv" for e in catalogue.entries("cot")), names  # no temp files left
  assert (root / "cot" / "gsm8k_train.tsv").read_text().count("\n") == COT_ROWS
  # Readers stream from the URL: a rendered example and `tasks show`.
  [r] = api.render_examples("cot_gsm8k_zscot", "train", limit=1)
  assert "gsm8k: what is 0 + 1?" in r.inputs and r.targets.startswith("0 plus one is 1.")
  monkeypatch.setenv(catalogue.DATA_DIR_ENV, ram_cot)
  capsys.readouterr()
  assert tasks_cli.main(["show", "cot_gsm8k", "--split=train", f"--data_dir={ram_cot}"]) == 0
  out = capsys.readouterr().out
  assert "[cot_gsm8k_zscot train #0" in out and "gsm8k: what is 0 + 1?" in out
  # A file missing there is named with its URL and the command that writes it.
  from flan_jax.tasks.collections import readers
  with pytest.raises(FileNotFoundError, match=r"ram://flan_test/data/cot/nope_train.tsv.*flan-jax data prepare cot"):
    next(readers.CotTsvSource(root / "cot" / "nope_train.tsv", task="cot_nope").examples("train"))


@pytest.fixture(scope="module")
def ram_cache(ram_cot):
  """`data cache flan2022_cot` into ram://, killed (a crash in its 6th shard) and rerun."""
  out = "ram://flan_test/cache"
  real, calls = cache._write_shard, []

  def crashing(settings, variant, k):
    calls.append((variant, k))
    if len(calls) == 6:
      raise KeyboardInterrupt("killed")
    return real(settings, variant, k)

  cache._write_shard = crashing
  try:
    with pytest.raises(KeyboardInterrupt):
      cache.build("flan2022_cot", out, lengths=LENGTHS, num_shards=2, say=lambda *a: None)
  finally:
    cache._write_shard = real
  lines = []
  manifest = cache.build("flan2022_cot", out, lengths=LENGTHS, num_shards=2, say=lines.append)
  return out, manifest, lines


def test_cache_layout_resume_counts_and_seqio_reads_a_member(ram_cache):
  import seqio
  from flan_jax.tasks import api
  out, manifest, lines = ram_cache
  assert "kept 5 finished shard(s)" in lines[-1], lines
  members = dict(manifest["members"])
  source = api.sampled_mixture("flan2022_cot")
  assert members == pytest.approx(dict(source.members("train")))  # the uncached path's rates
  assert len(members) == 54 and manifest["task_feature_lengths"] == LENGTHS
  d = storage.path(out) / "cot_gsm8k_zscot"
  assert sorted(p.name for p in d.iterdir()) == sorted([
      "COMPLETED", "COMPLETED.train", "info.train.json", "stats.train.json", "train.tfrecord-00000-of-00002",
      "train.tfrecord-00001-of-00002", "train.tfrecord-00000-of-00002.count.json",
      "train.tfrecord-00001-of-00002.count.json"])
  info = json.loads((d / "info.train.json").read_text())
  expected = COT_ROWS - 4  # the last tenth (at most 25) of each CoT file is validation
  assert info["num_shards"] == 2 and info["flan_jax"]["examples"] == expected
  assert info["flan_jax"]["shard_examples"] == [expected // 2, expected // 2]
  assert info["flan_jax"]["vocabulary"]["vocab_size"] == seqio.get_mixture_or_task(
      "cot_gsm8k_zscot").output_features["inputs"].vocabulary.vocab_size
  assert json.loads((d / "stats.train.json").read_text())["examples"] == expected
  # seqio's own reader (use_cached=True through its global cache dirs) gives the rendered examples.
  task = seqio.get_mixture_or_task("cot_gsm8k_zscot")
  with cache_reader.using_cache_dirs([out]):
    cached = list(task.get_dataset(LENGTHS, split="train", use_cached=True, shuffle=False).as_numpy_iterator())
    fresh = list(task.get_dataset(LENGTHS, split="train", shuffle=False).as_numpy_iterator())
  assert sorted(x["inputs"].tolist() for x in cached) == sorted(x["inputs"].tolist() for x in fresh)
  assert sorted(x["targets_pretokenized"] for x in cached) == sorted(x["targets_pretokenized"] for x in fresh)
  assert len(cached) == expected


def _batches(name, use_cached, dirs, n, lengths=LENGTHS):
  from flan_jax.training import data
  with cache_reader.using_cache_dirs(dirs):
    it = data.BatchIterator(name, lengths, 8, process_index=0, process_count=2, use_cached=use_cached, seed=3)
    return [next(it) for _ in range(n)]


@pytest.mark.slow
def test_cached_and_uncached_give_the_same_first_100_packed_batches(ram_cache):
  out = ram_cache[0]
  fresh = _batches("flan2022_cot", False, [], 100)
  cached = _batches("flan2022_cot", True, [out], 100)
  assert len(cached) == 100 and set(cached[0]) == set(fresh[0])
  for i, (a, b) in enumerate(zip(fresh, cached)):
    for k in a:
      np.testing.assert_array_equal(a[k], b[k], err_msg=f"batch {i} {k}")
  assert max(b["encoder_segment_ids"].max() for b in cached) > 1  # packed rows among them


def test_a_missing_or_stale_cache_names_the_command_that_rebuilds_it(ram_cache):
  out = ram_cache[0]
  with pytest.raises(cache_reader.CacheError, match=r"not cached in no cache dir \(set train.seqio_cache_dirs\).*"
                     r"`flan-jax data cache flan2022_cot --out=DIR --inputs_length=128 --targets_length=32`"):
    _batches("flan2022_cot", True, [], 1)
  other = {"inputs": 256, "targets": 32}
  with pytest.raises(cache_reader.CacheError, match=r"stale: built for TASK_FEATURE_LENGTHS .*'inputs': 128.*"
                     rf"`flan-jax data cache flan2022_cot --out={out} --inputs_length=256 --targets_length=32`"):
    _batches("flan2022_cot", True, [out], 1, lengths=other)
  with pytest.raises(cache_reader.CacheError, match=r"'cot_qasc_fscot' \(train\) is not cached"):
    _batches("cot_qasc_fscot", True, ["ram://flan_test/empty"], 1)
  # Building into the same --out for other lengths does not mix old and new members.
  with pytest.raises(cache_reader.CacheError, match=r"built for TASK_FEATURE_LENGTHS \{'inputs': 128, 'targets': 32\}.*"
                     r"this build is for \{'inputs': 256, 'targets': 32\}.*give a new --out"):
    cache.build("flan2022_cot", out, lengths=other, num_shards=2, say=lambda *a: None)


# --- across processes: file:// URLs ---------------------------------------------------------

TRAIN = [sys.executable, "-m", "flan_jax.cli", "train", "--gin_file=gin/recipes/quickstart.gin",
         "--gin.MIXTURE_OR_TASK_NAME='flan2022_cot'", "--gin.train.task_modules=['flan_jax.tasks.mixtures']",
         f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}", "--gin.BATCH_SIZE=8", "--gin.TRAIN_STEPS=12",
         "--gin.CHECKPOINT_PERIOD=4", "--gin.train.async_checkpointing=False", "--gin.train.log_every=1",
         "--gin.USE_CACHED_TASKS=True"]


def _free_port():
  import socket
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start(model_dir, cache_url, env):
  port = _free_port()
  argv = TRAIN + [f"--gin.MODEL_DIR={model_dir}", f"--gin.train.seqio_cache_dirs=['{cache_url}']"]
  return [subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=dict(env, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                                    JAX_PROCESS_ID=str(i))) for i in range(2)]


def _finish(procs):
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, (out[-2000:], err[-3000:])
  return [o for o, _ in outs]


def _losses(model_dir):
  with open(model_dir / "train_metrics.jsonl") as f:
    return [(row["step"], row["loss"]) for row in map(json.loads, f) if "loss" in row]


@pytest.mark.slow
def test_two_processes_train_from_a_cache_url_alone_and_resume_after_kill_9(ram_cache, tmp_path):
  """`data cache --workers=2` into a file:// URL writes the shards one process wrote into
  ram://; a 2-process run trains from it alone (its data dir is empty); killed with SIGKILL
  after its first checkpoint, the rerun resumes there and gives the losses the killed run
  had logged past that checkpoint (the uninterrupted trajectory), within 1e-6, then finishes."""
  data = tmp_path / "data"
  write_cot_release(data / "cot")  # the same files `data prepare cot` put into ram://
  cache_url = (tmp_path / "cache").as_uri()
  manifest = cache.build("flan2022_cot", cache_url, lengths=LENGTHS, num_shards=2, workers=2, data_dir=str(data),
                         modules=["flan_jax.tasks.mixtures"], say=lambda *a: None)
  assert manifest == ram_cache[1] and (tmp_path / "cache" / "flan2022_cot" / "flan_jax_cache.train.json").is_file()
  for variant, _ in manifest["members"]:  # worker processes write what one process wrote
    for k in range(2):
      shard = f"{variant}/train.tfrecord-0000{k}-of-00002"
      assert (tmp_path / "cache" / shard).read_bytes() == storage.path(f"{ram_cache[0]}/{shard}").read_bytes(), shard
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", PYTHONUNBUFFERED="1",
             FLAN_JAX_DATA_DIR=str(tmp_path / "empty"))  # nothing prepared: the cache alone is read
  run = tmp_path / "run"
  procs = _start(run, cache_url, env)
  deadline = time.time() + 600
  while not ((run / "checkpoints" / "4").is_dir() and os.path.exists(run / "train_metrics.jsonl")
             and any(step >= 6 for step, _ in _losses(run))):
    assert all(p.poll() is None for p in procs), f"the run ended before step 6: {_finish(procs)}"
    assert time.time() < deadline
    time.sleep(0.02)
  assert all(p.poll() is None for p in procs), "the run finished before it could be killed"
  for p in procs:
    p.kill()  # kill -9, both processes
    p.wait()
  before = dict(_losses(run))
  assert max(before) < 12 and not (run / "checkpoints" / "12").exists()
  out = _finish(_start(run, cache_url, env))[0]
  assert "in 2 process(es)" in out and "step     12/12" in out
  resumed_at = int(out.split("resumed from", 1)[1].split("at step ", 1)[1].split()[0])
  assert resumed_at in (4, 8) and resumed_at < max(before), out
  logged = _losses(run)  # repaired on resume: the killed run's steps past the checkpoint were dropped
  assert [s for s, _ in logged] == sorted({s for s, _ in logged}) and max(s for s, _ in logged) == 12
  after = [(s, loss) for s, loss in logged if s > resumed_at]
  assert [s for s, _ in after] == list(range(resumed_at + 1, 13))
  again = [(s, loss, before[s]) for s, loss in after if s in before]
  assert again, (before, after)  # steps both runs computed: the killed one and the resumed one
  for s, loss, first in again:
    assert abs(loss - first) <= 1e-6, (s, loss, first)

