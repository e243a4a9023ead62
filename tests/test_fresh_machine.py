"""What a new machine meets: archives we unpack, BIG-bench through the package index,
`convert from-hf` on bad files, and our commands' output (our lines only)."""
import hashlib
import io
import json
import logging
import os
import tarfile
import zipfile

import numpy as np
import pytest

from flan_jax.tasks import data_cli, archives, package_index
from flan_jax.checkpointing import convert_cli
from flan_jax.tasks import prepare

# ----------------------------------------------------------------------------------------
# Archives.


def _tar(path, members):
  """members: (name, bytes) for files, (name, "->target") for symlinks."""
  with tarfile.open(path, "w:gz") as t:
    for name, data in members:
      info = tarfile.TarInfo(name)
      if isinstance(data, str) and data.startswith("->"):
        info.type, info.linkname = tarfile.SYMTYPE, data[2:]
        t.addfile(info)
      else:
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
  return path


def _zip(path, members):
  with zipfile.ZipFile(path, "w") as z:
    for name, data in members:
      z.writestr(zipfile.ZipInfo(name), data)
  return path


def _all_files(root):
  return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


@pytest.mark.parametrize("kind,bad_member", [
    ("tar", "data/../../escaped.txt"),
    ("tar", "/ABS/escaped.txt"),
    ("tar", "data/link"),           # a symlink to a directory outside
    ("zip", "data/../../escaped.txt"),
    ("zip", "/ABS/escaped.txt"),
])
def test_unpack_refuses_members_that_escape(tmp_path, kind, bad_member):
  """A crafted archive is refused by archive and member; nothing is written anywhere (not
  even its harmless members) and the archive is kept."""
  outside = tmp_path / "outside"
  outside.mkdir()
  dest = tmp_path / "jail" / "data_dir"
  dest.mkdir(parents=True)
  name = bad_member.replace("/ABS", str(outside))
  members = [("data/ok.txt", b"fine"), (name, b"pwned")]
  if bad_member == "data/link":
    members = [("data/ok.txt", b"fine"), ("data/link", f"->{outside}")]
  archive = (_tar if kind == "tar" else _zip)(tmp_path / f"evil.{'tar.gz' if kind == 'tar' else 'zip'}",
                                              members)
  why = archives.unpack_or_why(archive, dest)  # pylint: disable=protected-access
  assert why is not None and str(archive) in why and repr(name) in why, why
  assert _all_files(tmp_path / "jail") == [] and _all_files(outside) == []
  assert not (tmp_path / "escaped.txt").exists() and archive.is_file()


def test_unpack_of_a_sound_archive_and_an_evil_download(tmp_path, monkeypatch):
  """Sound tar and zip archives unpack (the archive is then deleted); a downloaded MMLU
  archive with a '..' member is reported by `data prepare mmlu` as one line."""
  for maker, suffix in ((_tar, "tar.gz"), (_zip, "zip")):
    archive = maker(tmp_path / f"good.{suffix}", [("top/a.csv", b"1,2"), ("top/sub/b.csv", b"3")])
    assert archives.unpack_or_why(archive, tmp_path / suffix) is None  # pylint: disable=protected-access
    assert _all_files(tmp_path / suffix) == ["top/a.csv", "top/sub/b.csv"] and not archive.exists()
  served = _tar(tmp_path / "data.tar", [("data/test/x_test.csv", b"q,a,b,c,d,A"),
                                        ("../../../mmlu_escape.csv", b"pwned")])
  monkeypatch.setattr(prepare, "MMLU_URL", served.as_uri())
  monkeypatch.setattr(prepare, "MMLU_COT_URL", (tmp_path / "no-such-mmlu-cot.json").as_uri())
  failure, cot_failure = prepare.prepare("mmlu", tmp_path / "d")
  assert cot_failure.startswith("mmlu: ") and "no-such-mmlu-cot.json" in cot_failure
  assert failure.startswith("mmlu: ") and "'../../../mmlu_escape.csv'" in failure and "data.tar" in failure
  assert not list(tmp_path.rglob("mmlu_escape.csv")) and not (tmp_path / "d" / "mmlu" / "data").exists()


# ----------------------------------------------------------------------------------------
# BIG-bench through the package index.

_NAVIGATE = {"name": "navigate", "examples": [
    {"input": f"Take {i} steps forward. Take {i} steps back. Are you at the start?",
     "target_scores": {"Yes": 1, "No": 0}} for i in range(12)]}
_FIVE_OBJECTS = {"examples": [
    {"input": f"Order {i}: which is first?", "target_scores": {"A": int(i % 2 == 0), "B": int(i % 2 == 1)}}
    for i in range(8)]}


def _bigbench_sdist(path, extra=()):
  """A bigbench-1.0.0.tar.gz in the sdist's layout: task JSON under bigbench/benchmark_tasks
  among code and other files that must not be extracted."""
  top = "bigbench-1.0.0"
  return _tar(path, [
      (f"{top}/setup.py", b"raise SystemExit('never run')"),
      (f"{top}/bigbench/api/task.py", b"# code"),
      (f"{top}/bigbench/benchmark_tasks/navigate/task.json", json.dumps(_NAVIGATE).encode()),
      (f"{top}/bigbench/benchmark_tasks/navigate/README.md", b"# navigate"),
      (f"{top}/bigbench/benchmark_tasks/logical_deduction/five_objects/task.json",
       json.dumps(_FIVE_OBJECTS).encode()),
      *extra])


def _serve_index(root, archive, *, json_api=False, sha256=None):
  """A PEP 503 (HTML) or PEP 691 (JSON) simple index under `root`, as a file:// URL."""
  files = root / "files"
  files.mkdir(parents=True, exist_ok=True)
  os.replace(archive, files / archive.name)
  sha256 = sha256 or hashlib.sha256((files / archive.name).read_bytes()).hexdigest()
  page = root / "simple" / "bigbench"
  page.mkdir(parents=True, exist_ok=True)
  if json_api:
    body = json.dumps({"meta": {"api-version": "1.1"}, "name": "bigbench", "files": [
        {"filename": "bigbench-0.0.1.tar.gz", "url": "../../files/bigbench-0.0.1.tar.gz", "hashes": {}},
        {"filename": archive.name, "url": f"../../files/{archive.name}", "hashes": {"sha256": sha256}}]})
  else:
    body = (f'<html><body><a href="../../files/bigbench-0.0.1.tar.gz">bigbench-0.0.1.tar.gz</a>\n'
            f'<a href="../../files/{archive.name}#sha256={sha256}">{archive.name}</a></body></html>')
  (page / "index.html").write_text(body)
  return (root / "simple").as_uri()


def test_prepare_bigbench_through_the_simple_index_feeds_offline_bbh(tmp_path, monkeypatch, capsys):
  """`data prepare bigbench` finds bigbench-1.0.0.tar.gz on the index pip is configured with
  ($PIP_INDEX_URL), checks its sha256, extracts only task.json files, and the offline BBH
  tasks and `bbh_bigbench_*` tasks read them from the data dir."""
  from flan_jax.tasks import eval_suites
  index = _serve_index(tmp_path / "index", _bigbench_sdist(tmp_path / "bigbench-1.0.0.tar.gz"))
  monkeypatch.setenv("PIP_INDEX_URL", index)
  monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "file:///nonexistent/simple")
  assert package_index.pip_index_urls()[:2] == [index, "file:///nonexistent/simple"]
  data = tmp_path / "data"
  assert data_cli.main(["prepare", "bigbench", f"--data_dir={data}"]) == 0
  assert "bigbench: 2 task files" in capsys.readouterr().out
  tasks_dir = data / "bigbench" / "benchmark_tasks"
  assert _all_files(data) == ["bigbench/benchmark_tasks/logical_deduction/five_objects/task.json",
                              "bigbench/benchmark_tasks/navigate/task.json"]
  assert json.loads((tasks_dir / "navigate" / "task.json").read_text()) == _NAVIGATE
  assert eval_suites.bigbench_root(data) == tasks_dir
  shots, evaluated = eval_suites.bbh_offline_examples("navigate", data_dir=data)
  assert len(shots) == 3 and len(evaluated) == 9 and shots[0][1] == "Yes"   # BBH's navigate golds are words
  shots, _ = eval_suites.bbh_offline_examples("logical_deduction_five_objects", data_dir=data)
  assert shots[0][0].startswith("Order ")
  assert eval_suites.register_bigbench_tasks(["navigate"], data_dir=data) == ["bbh_bigbench_navigate"]
  assert prepare.prepare("bigbench", data) == []  # already there: nothing fetched again


def test_prepare_bigbench_json_api_checksum_and_unsafe_member(tmp_path, monkeypatch):
  """The PEP 691 JSON listing works too; a sha256 that differs from the index's, an index
  without the file, and an archive with a task.json member climbing out with '..' are each
  one failure line, and nothing lands in the data dir or outside it."""
  data = tmp_path / "data"
  index = _serve_index(tmp_path / "ok", _bigbench_sdist(tmp_path / "bigbench-1.0.0.tar.gz"), json_api=True)
  assert prepare._bigbench(data, 30, [index]) == []  # pylint: disable=protected-access
  assert (data / "bigbench" / "benchmark_tasks" / "navigate" / "task.json").is_file()

  data = tmp_path / "data2"
  index = _serve_index(tmp_path / "tampered", _bigbench_sdist(tmp_path / "bigbench-1.0.0.tar.gz"),
                       sha256="0" * 64)
  empty = tmp_path / "empty" / "simple" / "bigbench"
  empty.mkdir(parents=True)
  (empty / "index.html").write_text("<html><body></body></html>")
  (failure,) = prepare._bigbench(data, 30, [empty.parent.as_uri(), index])  # pylint: disable=protected-access
  assert "no bigbench-1.0.0.tar.gz in its bigbench listing" not in failure  # found on the second index
  assert "sha256" in failure and "0" * 64 in failure
  (failure,) = prepare._bigbench(data, 30, [empty.parent.as_uri()])  # pylint: disable=protected-access
  assert f"{empty.parent.as_uri()}: no bigbench-1.0.0.tar.gz in its bigbench listing" in failure

  evil = "bigbench-1.0.0/bigbench/benchmark_tasks/../../../../../evil/task.json"
  index = _serve_index(tmp_path / "crafted", _bigbench_sdist(tmp_path / "bigbench-1.0.0.tar.gz",
                                                          extra=[(evil, b"{}")]))
  (failure,) = prepare._bigbench(data, 30, [index])  # pylint: disable=protected-access
  assert failure.startswith("bigbench: ") and repr(evil) in failure and "bigbench-1.0.0.tar.gz" in failure
  assert not list(tmp_path.rglob("evil")) and not (data / "bigbench" / "benchmark_tasks").exists()


# ----------------------------------------------------------------------------------------
# convert from-hf on bad files: one line naming the file (and field), no traceback.

_TINY_T5 = {"model_type": "t5", "architectures": ["T5ForConditionalGeneration"], "vocab_size": 32,
            "d_model": 8, "d_kv": 4, "d_ff": 16, "num_layers": 1, "num_heads": 2,
            "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False}


def _from_hf_error(src, tmp_path, capsys):
  from flan_jax.checkpointing import hf
  rc = convert_cli.main(["from-hf", str(src), str(tmp_path / "out")])
  err = capsys.readouterr().err
  assert rc == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
  assert not (tmp_path / "out").exists()
  return err


def test_from_hf_names_the_file_and_field_of_bad_input(tmp_path, capsys):
  import safetensors.numpy
  src = tmp_path / "hf"
  src.mkdir()
  safetensors.numpy.save_file({"shared.weight": np.ones((32, 8), np.float32),
                               "lm_head.weight": np.ones((32, 8), np.float32)},
                              str(src / "model.safetensors"))
  config = src / "config.json"
  config.write_text(json.dumps(_TINY_T5)[:-1])  # malformed JSON
  err = _from_hf_error(src, tmp_path, capsys)
  assert f"{config}: not valid JSON" in err and "line 1" in err
  config.write_text(json.dumps({**_TINY_T5, "d_model": "128"}))
  err = _from_hf_error(src, tmp_path, capsys)
  assert f"{config}: field 'd_model' must be a positive integer, got '128' (str)" in err
  config.write_text(json.dumps({**_TINY_T5, "layer_norm_epsilon": "1e-6"}))
  assert "field 'layer_norm_epsilon' must be a number" in _from_hf_error(src, tmp_path, capsys)
  config.write_text(json.dumps(_TINY_T5))
  weights = src / "model.safetensors"
  weights.write_bytes(weights.read_bytes()[:-100])  # truncated download
  err = _from_hf_error(src, tmp_path, capsys)
  assert f"{weights}: not a readable safetensors file" in err


# ----------------------------------------------------------------------------------------
# Our lines only.


def test_training_pipeline_does_not_mem_cache_what_it_stops_reading():
  """seqio caches small tasks in memory (`ds.cache()`); a run stops part-way through an
  epoch, so tf.data warned once per task at exit ("did not fully read the dataset being
  cached"). The training pipeline has no cache op."""
  import seqio
  import tensorflow as tf
  from flan_jax.tasks import lookup
  from flan_jax.training import data
  lookup.import_task_modules(["flan_jax.tasks.embedded"])
  task = seqio.get_mixture_or_task("flan_jax_embedded").tasks[0]  # small: seqio would cache it
  it = data.BatchIterator(task.name, {"inputs": 64, "targets": 16}, 4, process_index=0, process_count=1)
  graph = tf.compat.v1.GraphDef.FromString(
      tf.raw_ops.DatasetToGraphV2(input_dataset=it._ds._variant_tensor).numpy())  # pylint: disable=protected-access
  ops = {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
  assert "RepeatDataset" in ops or "ShuffleDataset" in ops or "ShuffleDatasetV3" in ops, sorted(ops)
  assert not any(op.startswith("CacheDataset") for op in ops), sorted(ops)
  assert next(it)["encoder_input_tokens"].shape == (4, 64)


def test_orbax_step_metadata_warning_is_dropped_other_warnings_kept(tmp_path):
  """Restoring the params of a run step (its `state/` item) makes orbax warn that
  `state/_CHECKPOINT_METADATA` does not exist (it lies one level up); `console.quiet()`
  drops exactly that warning."""
  import orbax.checkpoint as ocp
  from flan_jax.checkpointing import checkpoints
  from flan_jax.runtime import console
  step = tmp_path / "run" / "checkpoints" / "3"
  ckptr = ocp.StandardCheckpointer()
  ckptr.save(step / "state", {"params": {"w": np.arange(4.0)}, "step": np.int32(3)})
  ckptr.wait_until_finished()
  os.replace(step / "state" / "_CHECKPOINT_METADATA", step / "_CHECKPOINT_METADATA")

  records = []
  handler = logging.Handler()
  handler.emit = records.append
  absl_logger = logging.getLogger("absl")
  absl_logger.addHandler(handler)
  quieted = console._FILTER in absl_logger.filters  # pylint: disable=protected-access
  absl_logger.removeFilter(console._FILTER)  # pylint: disable=protected-access  (an earlier test's quiet())
  try:
    np.testing.assert_array_equal(checkpoints.load_params(str(step))["w"], np.arange(4.0))
    assert any("_CHECKPOINT_METADATA" in r.getMessage() for r in records), "orbax no longer warns?"
    records.clear()
    console.quiet()
    np.testing.assert_array_equal(checkpoints.load_params(str(step))["w"], np.arange(4.0))
    absl_logger.warning("another warning")
    assert [r.getMessage() for r in records if "_CHECKPOINT_METADATA" in r.getMessage()] == []
    assert [r.getMessage() for r in records if r.getMessage() == "another warning"]
  finally:
    absl_logger.removeHandler(handler)
    if not quieted:
      absl_logger.removeFilter(console._FILTER)  # pylint: disable=protected-access
    absl_logger.removeFilter(console._FILTER)  # pylint: disable=protected-access
