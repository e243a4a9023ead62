"""The reading side of `flan-jax data cache`'s output: where a cache is (seqio's global cache
dirs), whether it is fresh for a run (lengths, vocabulary) and whole (every shard, its size,
its checksums), and how a task reads it (`check_member` before seqio reads a cached variant;
`sampled_dataset` for a sampled Flan mixture). Importing it loads neither seqio nor
TensorFlow; the task classes that call it are `api.FlanVariantTask` and `api.SampledMixtureTask`."""
from __future__ import annotations

import contextlib
import copy
import hashlib
import heapq
import json
import os
import struct
from collections.abc import Iterator, Mapping, Sequence

from flan_jax.tasks import storage
from flan_jax.tasks import templates as tpl

FORMAT = "flan_jax.seqio_cache/1"
MANIFEST = "flan_jax_cache.{split}.json"
DEFAULT_LENGTHS = {"inputs": 2048, "targets": 512}
INT_FEATURES = ("template_index", "num_exemplars", "index")
STR_FEATURES = ("inputs_pretokenized", "targets_pretokenized")
_VOCAB_FIELDS: dict[int, tuple[object, dict]] = {}


class CacheError(ValueError):
  """A cache that is missing, incomplete or built for other settings."""


def vocabulary_fields(vocab) -> dict:
  """What identifies a vocabulary across machines: its size and a hash of its model."""
  if id(vocab) not in _VOCAB_FIELDS:  # hashed once per vocabulary object, not per shard
    _VOCAB_FIELDS[id(vocab)] = (vocab, _vocabulary_fields(vocab))
  return dict(_VOCAB_FIELDS[id(vocab)][1])


def _vocabulary_fields(vocab) -> dict:
  model = getattr(vocab, "sp_model", None)
  return {"class": type(vocab).__name__, "vocab_size": int(vocab.vocab_size),
          "extra_ids": int(getattr(vocab, "extra_ids", 0)),
          "file": os.path.basename(getattr(vocab, "sentencepiece_model_file", "") or ""),
          "sha256": hashlib.sha256(model).hexdigest()[:16] if model else None}


def rebuild_command(name: str, out, lengths: Mapping[str, int], split: str = "train") -> str:
  extra = "" if split == "train" else f" --split={split}"
  return (f"flan-jax data cache {name} --out={out} --inputs_length={lengths['inputs']} "
          f"--targets_length={lengths['targets']}{extra}")


def read_records(path) -> Iterator[bytes]:
  """The records of a TFRecord file, local or URL, streamed (CRCs not checked here: a member's
  local shards are checked by `scan_shard` when it is first read)."""
  with storage.open(path, "rb") as f:
    while True:
      head = f.read(12)
      if not head:
        return
      if len(head) < 12:
        raise CacheError(f"{path}: truncated TFRecord file")
      (length,) = struct.unpack("<Q", head[:8])
      data = f.read(length + 4)
      if len(data) < length + 4:
        raise CacheError(f"{path}: truncated TFRecord file")
      yield data[:length]


def from_example(data: bytes) -> dict:
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tensorflow.core.example import example_pb2  # pylint: disable=g-import-not-at-top
  f = example_pb2.Example.FromString(data).features.feature
  out = {k: np.asarray(f[k].int64_list.value, np.int32) for k in ("inputs", "targets")}
  out.update({k: int(f[k].int64_list.value[0]) for k in INT_FEATURES})
  out.update({k: f[k].bytes_list.value[0] for k in STR_FEATURES})
  return out


def shard_name(split: str, k: int, n: int) -> str:
  return f"{split}.tfrecord-{k:05d}-of-{n:05d}"


def read_json(path) -> dict:
  with storage.open(path) as f:
    return json.load(f)


def completed(member_dir, split: str) -> bool:
  """Whether a member's `split` is cached whole: its COMPLETED.<split> marker. (A cache
  from before per-split markers is finished again by rerunning its `data cache` command:
  its shards and count files are kept, only the markers are written.)"""
  return (storage.path(member_dir) / f"COMPLETED.{split}").exists()


def cache_dirs() -> list[str]:
  import seqio  # pylint: disable=g-import-not-at-top
  return list(seqio.utils.get_global_cache_dirs())


@contextlib.contextmanager
def using_cache_dirs(dirs: Sequence[str]):
  """Adds `dirs` to seqio's global cache dirs for a `with` block (one run), then restores them."""
  import seqio  # pylint: disable=g-import-not-at-top
  saved = cache_dirs()
  try:
    if dirs:
      seqio.add_global_cache_dirs([str(d) for d in dirs])
    yield cache_dirs()
  finally:
    seqio.set_global_cache_dirs(saved)


def find_manifest(name: str, split: str, dirs: Sequence[str]) -> tuple[str, dict] | None:
  for d in dirs:
    path = storage.path(d) / name / MANIFEST.format(split=split)
    if path.exists():
      return str(d), read_json(path)
  return None


def _missing(name: str, split: str, dirs, lengths) -> CacheError:
  where = f"the cache dirs {dirs}" if dirs else "no cache dir (set train.seqio_cache_dirs)"
  out = dirs[0] if dirs else "DIR"
  return CacheError(
      f"USE_CACHED_TASKS=True but {name!r} ({split}) is not cached in {where}; build it once with "
      f"`{rebuild_command(name, out, lengths, split)}` and pass --gin.train.seqio_cache_dirs=\"['{out}']\"")


def check_fresh(name: str, where: str, recorded: Mapping, vocab, lengths: Mapping[str, int],
                split: str = "train") -> None:
  """Refuses a cache built for other feature lengths or another vocabulary."""
  lengths = {"inputs": int(lengths["inputs"]), "targets": int(lengths["targets"])}
  problems = []
  if dict(recorded.get("task_feature_lengths", {})) != lengths:
    problems.append(f"TASK_FEATURE_LENGTHS {recorded.get('task_feature_lengths')} (this run: {lengths})")
  have, want = recorded.get("vocabulary", {}), vocabulary_fields(vocab)
  if {k: have.get(k) for k in ("vocab_size", "sha256")} != {k: want[k] for k in ("vocab_size", "sha256")}:
    problems.append(f"vocabulary {have.get('file')} ({have.get('vocab_size')} ids, sha256 {have.get('sha256')}); "
                    f"this run: {want['file']} ({want['vocab_size']} ids, sha256 {want['sha256']})")
  if problems:
    raise CacheError(f"the cache of {name!r} in {where} is stale: built for " + "; ".join(problems)
                     + f". Rebuild it: `{rebuild_command(name, where, lengths, split)}` (into a new --out, "
                     "or after deleting the old one)")


def member_reader(root, variant: str, split: str, num_shards: int):
  """A function returning a fresh iterator over one cached member's examples, in source
  order (its shards merged by source position). Reads nothing until called: a manifest is
  written only once every member is COMPLETED, so thousands of members cost no file reads
  before the first batch."""
  d = storage.path(root) / variant
  n = int(num_shards)
  paths = [d / shard_name(split, k, n) for k in range(n)]
  checked = []

  def records(path):
    try:
      for r in read_records(path):
        yield from_example(r)
    except CacheError:
      raise
    except Exception as e:  # pylint: disable=broad-except  (a corrupt record: protobuf, struct, ...)
      raise CacheError(f"{path} is corrupt ({type(e).__name__}: {str(e)[:200]}); rebuild the cache with "
                       "`flan-jax data cache` into a new --out") from None

  def examples():
    if not checked:  # once, when the member is first read: whole, and (local) checksums intact
      info_path = d / f"info.{split}.json"
      info = read_json(info_path) if storage.exists(info_path) else {"num_shards": n}
      check_shards(root, variant, split, info, scan=not storage.is_url(root))
      checked.append(True)
    streams = [records(p) for p in paths]
    return heapq.merge(*streams, key=lambda e: e["index"]) if n > 1 else streams[0]
  return examples


def _signature():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return {"inputs": tf.TensorSpec((None,), tf.int32), "targets": tf.TensorSpec((None,), tf.int32),
          "inputs_pretokenized": tf.TensorSpec((), tf.string), "targets_pretokenized": tf.TensorSpec((), tf.string),
          "template_index": tf.TensorSpec((), tf.int32), "num_exemplars": tf.TensorSpec((), tf.int32)}


def sampled_dataset(task, sequence_length, split, seed, shard_info):
  """The cached twin of `api.SampledMixtureSource.get_dataset` followed by tokenization:
  the same member draws (manifest rates, same stream seed per shard), each member's next
  example read from the cache instead of rendered."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  dirs = cache_dirs()
  lengths = dict(sequence_length or {})
  found = find_manifest(task.name, split, dirs)
  if found is None:
    raise _missing(task.name, split, dirs, lengths or DEFAULT_LENGTHS)
  root, manifest = found
  check_fresh(task.name, root, manifest, task.output_features["targets"].vocabulary, lengths, split)
  rated = [(v, float(r)) for v, r in manifest["members"]]
  readers = {v: member_reader(root, v, split, manifest["num_shards"]) for v, _ in rated}
  source = task.source  # the sampled mixture's own source: the same draws
  endless = split == "train"
  index = shard_info.index if shard_info and endless else 0
  stream_seed = tpl.stable_hash(task.name, split, 0 if seed is None else int(seed), index)
  keys = tuple(_signature())

  def rows():
    for _, ex in source._tagged_stream(rated, split, stream_seed,  # pylint: disable=protected-access
                                       opener=lambda name: readers[name]()):
      yield {k: ex[k] for k in keys}

  ds = tf.data.Dataset.from_generator(rows, output_signature=_signature())
  if shard_info and shard_info.num_shards > 1 and not endless:
    ds = ds.shard(shard_info.num_shards, shard_info.index)
  return ds


def check_member(task, sequence_length, split: str) -> None:
  """Before seqio reads one cached variant: it is there, fresh and whole (every shard its
  info names, with the recorded size; local shards also pass TFRecord's checksums)."""
  dirs = cache_dirs()
  lengths = dict(sequence_length or DEFAULT_LENGTHS)
  for d in dirs:
    info = storage.path(d) / task.name / f"info.{split}.json"
    if completed(storage.path(d) / task.name, split) and info.exists():
      recorded = read_json(info)
      check_fresh(task.name, d, recorded.get("flan_jax", {}), task.output_features["targets"].vocabulary, lengths,
                  split)
      check_shards(d, task.name, split, recorded, scan=not storage.is_url(d))
      return
  raise _missing(task.name, split, dirs, lengths)


def _size(path) -> int:
  return storage.size(path)


def check_shards(root, variant: str, split: str, info: Mapping, *, scan: bool = False) -> None:
  """Every shard of a member that its info names exists with the size it was written with
  (caches built before sizes were recorded: exists); with `scan`, every record's TFRecord
  checksums are verified too. A missing, resized or corrupt shard is a CacheError naming it."""
  d = storage.path(root) / variant
  n = int(info["num_shards"])
  sizes = (info.get("flan_jax") or {}).get("shard_bytes")
  for k in range(n):
    path = d / shard_name(split, k, n)
    if not storage.exists(path):
      raise CacheError(f"{path} is missing from the cache of {variant!r} ({n} shards): the cache is incomplete; "
                       f"rebuild it with `flan-jax data cache` into a new --out")
    if sizes is not None and _size(path) != int(sizes[k]):
      raise CacheError(f"{path} has {_size(path)} bytes, but it was written with {sizes[k]}: the shard is truncated "
                       "or was replaced; rebuild the cache with `flan-jax data cache` into a new --out")
    if scan:
      scan_shard(path)


def scan_shard(path) -> int:
  """Reads every record of a TFRecord shard with its checksums (TensorFlow's reader); returns
  the count. A corrupt shard is a CacheError naming the file."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    return sum(1 for _ in tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
  except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError) as e:
    why = (str(e.message if hasattr(e, "message") else e).strip().splitlines() or ["corrupt"])[0][:200]
    raise CacheError(f"{path} is corrupt ({why}); rebuild the cache with `flan-jax data cache` into a new "
                     "--out") from None


def fitted_task(task, sequence_length):
  """`task` with a source whose few-shot prompts fit `sequence_length['inputs']`: the budget
  travels with the request for data (seqio passes the run's lengths to `get_dataset`), never
  through state kept on the task or its renderer."""
  inputs = (sequence_length or {}).get("inputs")
  if inputs is None:
    return task
  fitted = copy.copy(task)
  fitted._source = task.source.for_inputs_length(int(inputs))  # pylint: disable=protected-access
  return fitted


def cached_here(name: str, cache_dir: str, split: str = "train") -> dict | None:
  """The manifest of `name` under `cache_dir` when it is complete there, else None."""
  path = storage.path(cache_dir) / name / MANIFEST.format(split=split)
  return read_json(path) if path.exists() else None
