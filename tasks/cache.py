"""`flan-jax data cache NAME --out=DIR`: render and tokenize a task or mixture once, train from it.

    flan-jax data cache flan2022_submix --out=gs://BUCKET/flan_cache \\
        --inputs_length=2048 --targets_length=512 --shards=8 --workers=16
    flan-jax train ... --gin.USE_CACHED_TASKS=True --gin.train.seqio_cache_dirs="['gs://BUCKET/flan_cache']"

Layout (seqio's offline cache, so that seqio's own `use_cached=True` reads each member):

  DIR/<variant>/info.train.json      features, num_shards, seqio_version, and under
                                     "flan_jax": format, counts, vocabulary, lengths
  DIR/<variant>/stats.train.json     examples, inputs/targets tokens (seqio's stats)
  DIR/<variant>/train.tfrecord-0000K-of-0000N   tf.train.Examples: `inputs`/`targets`
                                     (token ids before EOS and trimming, as seqio caches
                                     them), `inputs_pretokenized`/`targets_pretokenized`,
                                     `template_index`, `num_exemplars`, and `index` (the
                                     example's position in its source)
  DIR/<variant>/COMPLETED.<split>    written last, after the counts are verified (and
                                     DIR/<variant>/COMPLETED, the marker seqio looks for);
                                     one directory holds a member's train and validation
  DIR/<NAME>/flan_jax_cache.train.json   the manifest: members and their sampling rates,
                                     lengths, vocabulary; written when every member is done

Shard K of a member holds the examples whose source position is K mod N, so (member,
shard) pairs are independent work items, run by `--workers` processes; each shard is
written aside and renamed into place with a count file next to it, so a killed build
keeps its finished shards and a rerun does only the rest. A member is COMPLETED once
every shard's file holds as many records as its count file says (and, for zero-shot
formats, as many as the source has examples).

Training reads the cache when USE_CACHED_TASKS=True and `train.seqio_cache_dirs` (T5X's
`--seqio_additional_cache_dirs`) names DIR. A sampled Flan mixture draws its members with
the manifest's rates and the same seeds as without the cache, so the examples are the
same; a single variant or a seqio Mixture of variants is read by seqio itself. The
few-shot budget and so the rendered prompts depend on the inputs length and the tokens
on the vocabulary: a cache built for other lengths or another vocabulary is refused,
naming the command that rebuilds it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import heapq
import json
import os
import struct
import sys
import time
from collections.abc import Iterator, Mapping, Sequence

from flan_jax.tasks import storage
from flan_jax.tasks.collections import catalogue

FORMAT = "flan_jax.seqio_cache/1"
MANIFEST = "flan_jax_cache.{split}.json"
DEFAULT_LENGTHS = {"inputs": 2048, "targets": 512}
_INT_FEATURES = ("template_index", "num_exemplars", "index")
_STR_FEATURES = ("inputs_pretokenized", "targets_pretokenized")


class CacheError(ValueError):
  """A cache that is missing, incomplete or built for other settings."""


# --- what a name caches -----------------------------------------------------------------


def _api():
  from flan_jax.tasks import api  # pylint: disable=g-import-not-at-top
  return api


def members(name: str, split: str = "train") -> tuple[str, list[tuple[str, float]]]:
  """(kind, [(variant, rate)]) of a registered name: a sampled Flan mixture (its rates,
  read from the members' example counts), a seqio Mixture or family of FLAN variants, or
  one variant (rate 1)."""
  import seqio  # pylint: disable=g-import-not-at-top
  from flan_jax.tasks import lookup  # pylint: disable=g-import-not-at-top  (seqio: not for --help)
  api = _api()
  if api.is_sampled_mixture(name):
    return "sampled", api.sampled_mixture(name).members(split)
  task = lookup.get_mixture_or_task(name)  # family names register their mixture here
  if isinstance(task, seqio.Mixture):
    leaves = [(t.name, float(task.get_rate(t))) for t in task.tasks]
    kind = "mixture"
  else:
    leaves, kind = [(task.name, 1.0)], "task"
  plain = [n for n, _ in leaves if api.variant(n) is None]
  if plain:
    raise CacheError(f"{name!r}: {plain[:3]} are not FLAN task variants (registered by "
                     "api.register_flan_task); cache those with seqio's seqio_cache_tasks")
  return kind, leaves


_VOCAB_FIELDS: dict[int, tuple[object, dict]] = {}


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


# --- TFRecords ---------------------------------------------------------------------------


def _read_records(path) -> Iterator[bytes]:
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


def _to_example(row: dict) -> bytes:
  from tensorflow.core.example import example_pb2, feature_pb2  # pylint: disable=g-import-not-at-top
  feats = {}
  for k in ("inputs", "targets", *_INT_FEATURES):
    v = row[k]
    feats[k] = feature_pb2.Feature(int64_list=feature_pb2.Int64List(
        value=list(v) if isinstance(v, (list, tuple)) else [int(v)]))
  for k in _STR_FEATURES:
    feats[k] = feature_pb2.Feature(bytes_list=feature_pb2.BytesList(value=[row[k].encode("utf-8")]))
  return example_pb2.Example(features=feature_pb2.Features(feature=feats)).SerializeToString(deterministic=True)


def _from_example(data: bytes) -> dict:
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tensorflow.core.example import example_pb2  # pylint: disable=g-import-not-at-top
  f = example_pb2.Example.FromString(data).features.feature
  out = {k: np.asarray(f[k].int64_list.value, np.int32) for k in ("inputs", "targets")}
  out.update({k: int(f[k].int64_list.value[0]) for k in _INT_FEATURES})
  out.update({k: f[k].bytes_list.value[0] for k in _STR_FEATURES})
  return out


FEATURES = {"inputs": {"shape": [None], "dtype": "int32"},
            "targets": {"shape": [None], "dtype": "int32"},
            **{k: {"shape": [], "dtype": "string"} for k in _STR_FEATURES},
            **{k: {"shape": [], "dtype": "int32"} for k in _INT_FEATURES}}


def _shard_name(split: str, k: int, n: int) -> str:
  return f"{split}.tfrecord-{k:05d}-of-{n:05d}"


# --- building -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
  out: str
  split: str
  num_shards: int
  lengths: tuple[tuple[str, int], ...]

  @property
  def feature_lengths(self) -> dict[str, int]:
    return dict(self.lengths)


def _write_shard(settings: Settings, variant: str, k: int) -> tuple[str, int, int]:
  """Renders, tokenizes and writes shard `k` of one member; returns (variant, k, examples).
  Skips a shard whose file and count are already there."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  api = _api()
  d = storage.path(settings.out) / variant
  n = settings.num_shards
  final, count = d / _shard_name(settings.split, k, n), d / f"{_shard_name(settings.split, k, n)}.count.json"
  renderer, fmt = api.variant(variant)
  vocab = renderer.vocabulary
  if count.exists() and final.exists():
    _same_build(settings, _read_json(count), vocab, where=count)
    return variant, k, -1
  d.mkdir(parents=True, exist_ok=True)
  tmp = d / f".{final.name}.tmp-{os.getpid()}"
  examples = tokens_in = tokens_out = max_in = max_out = 0
  with api.fewshot_budget_for(settings.feature_lengths), tf.io.TFRecordWriter(str(tmp)) as w:
    for r in renderer.render(settings.split, fmt, shard=(k, n)):
      inputs, targets = vocab.encode(r.inputs), vocab.encode(r.targets)
      w.write(_to_example({"inputs": inputs, "targets": targets, "inputs_pretokenized": r.inputs,
                           "targets_pretokenized": r.targets, "template_index": r.template_index,
                           "num_exemplars": len(r.exemplar_indices), "index": r.index}))
      examples += 1
      tokens_in, tokens_out = tokens_in + len(inputs), tokens_out + len(targets)
      max_in, max_out = max(max_in, len(inputs)), max(max_out, len(targets))
  storage.replace(tmp, final)
  _write_json(count, {"examples": examples, "inputs_tokens": tokens_in, "targets_tokens": tokens_out,
                      "inputs_max_tokens": max_in, "targets_max_tokens": max_out,
                      "task_feature_lengths": settings.feature_lengths, "vocabulary": vocabulary_fields(vocab)})
  return variant, k, examples


def _same_build(settings: Settings, recorded: Mapping, vocab, *, where) -> None:
  """A rerun keeps finished work only if it was built with the same lengths and vocabulary."""
  want = (settings.feature_lengths, vocabulary_fields(vocab)["sha256"])
  have = (dict(recorded.get("task_feature_lengths", {})), recorded.get("vocabulary", {}).get("sha256"))
  if have != want:
    raise CacheError(f"{where} was built for TASK_FEATURE_LENGTHS {have[0]} (vocabulary sha256 {have[1]}), this "
                     f"build is for {want[0]} ({want[1]}): give a new --out, or delete {settings.out} first")


def _write_json(path, value) -> None:
  """Writes JSON aside, then renames it into place."""
  path = storage.path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
  with storage.open(tmp, "w") as f:
    f.write(json.dumps(value, indent=1, sort_keys=True) + "\n")
  storage.replace(tmp, path)


def _read_json(path) -> dict:
  with storage.open(path) as f:
    return json.load(f)


def completed(member_dir, split: str) -> bool:
  """Whether a member's `split` is cached whole: its COMPLETED.<split> marker. (A cache
  from before per-split markers is finished again by rerunning its `data cache` command:
  its shards and count files are kept, only the markers are written.)"""
  return (storage.path(member_dir) / f"COMPLETED.{split}").exists()


def _finish_member(settings: Settings, variant: str) -> int:
  """Verifies a member's shards by counting their records and writes its info, stats and
  COMPLETED; returns its number of examples."""
  import seqio  # pylint: disable=g-import-not-at-top
  api = _api()
  d = storage.path(settings.out) / variant
  renderer, fmt = api.variant(variant)
  if completed(d, settings.split):
    info = _read_json(d / f"info.{settings.split}.json")
    _same_build(settings, info["flan_jax"], renderer.vocabulary, where=d / f"info.{settings.split}.json")
    if int(info["num_shards"]) != settings.num_shards:
      raise CacheError(f"{d} holds {info['num_shards']} shards, this build asks for {settings.num_shards}: give a "
                       f"new --out, or the same --shards")
    return int(info["flan_jax"]["examples"])
  n, split = settings.num_shards, settings.split
  counts = [_read_json(d / f"{_shard_name(split, k, n)}.count.json") for k in range(n)]
  for k, c in enumerate(counts):
    found = sum(1 for _ in _read_records(d / _shard_name(split, k, n)))
    if found != c["examples"]:
      raise CacheError(f"{d / _shard_name(split, k, n)}: {found} records, its count file says "
                       f"{c['examples']}; delete both and rerun the same `flan-jax data cache`")
  total = sum(c["examples"] for c in counts)
  shard_bytes = [_size(d / _shard_name(split, k, n)) for k in range(n)]
  if not fmt.fewshot:  # zero-shot formats render every source example
    expected = renderer.source.num_examples(split)
    if expected != total:
      raise CacheError(f"{variant}: cached {total} {split} examples, its source has {expected}")
  stats = {"examples": total, **{key: sum(c[key] for c in counts) for key in ("inputs_tokens", "targets_tokens")},
           **{key: max(c[key] for c in counts) for key in ("inputs_max_tokens", "targets_max_tokens")}}
  info = {"features": FEATURES, "num_shards": n, "seqio_version": seqio.__version__,
          "flan_jax": {"format": FORMAT, "task": variant, "split": split, "examples": total,
                       "shard_examples": [c["examples"] for c in counts], "shard_bytes": shard_bytes,
                       "task_feature_lengths": settings.feature_lengths,
                       "fewshot_budget": _budget(settings.feature_lengths),
                       "vocabulary": vocabulary_fields(renderer.vocabulary)}}
  _write_json(d / f"info.{split}.json", info)
  _write_json(d / f"stats.{split}.json", stats)
  for marker in (f"COMPLETED.{split}", "COMPLETED"):
    with storage.open(d / marker, "w") as f:
      f.write("")
  return total


def _budget(lengths) -> int:
  with _api().fewshot_budget_for(lengths) as budget:
    return budget


def _worker_init(data_dir: str | None, modules: Sequence[str]) -> None:
  if data_dir:
    os.environ[catalogue.DATA_DIR_ENV] = data_dir
  from flan_jax.tasks import lookup  # pylint: disable=g-import-not-at-top  (seqio: not for --help)
  lookup.import_task_modules(list(modules))


@dataclasses.dataclass(frozen=True)
class BuildPlan:
  """What a cache build of a name will do, for either engine (local processes or Beam)."""
  settings: Settings
  todo: list[tuple[str, int]]  # (member, shard) work items not yet complete
  manifest: dict               # the manifest to write, less the members' example counts
  manifest_path: object
  done_before: int             # work items of members already complete


def plan_build(name: str, out, *, lengths: Mapping[str, int] = DEFAULT_LENGTHS, num_shards: int = 4,
               split: str = "train", check_done: bool = True) -> BuildPlan:
  """The work of a build; `check_done=False` does not look at `out` (every item is listed)."""
  if num_shards < 1:
    raise CacheError(f"--shards={num_shards} must be at least 1")
  lengths = {"inputs": int(lengths["inputs"]), "targets": int(lengths["targets"])}
  out = str(out).rstrip("/") if storage.is_url(out) else os.path.abspath(os.path.expanduser(str(out)))
  api = _api()
  kind, rated = members(name, split)
  vocab = api.variant(rated[0][0])[0].vocabulary
  settings = Settings(out, split, num_shards, tuple(sorted(lengths.items())))
  todo = [(v, k) for v, _ in rated if not (check_done and completed(storage.path(out) / v, split))
          for k in range(num_shards)]  # one marker check per member, not per shard
  manifest = {"format": FORMAT, "name": name, "kind": kind, "split": split,
              "members": [[v, r] for v, r in rated], "task_feature_lengths": lengths,
              "fewshot_budget": _budget(lengths), "vocabulary": vocabulary_fields(vocab), "num_shards": num_shards}
  return BuildPlan(settings, todo, manifest, storage.path(out) / name / MANIFEST.format(split=split),
                   len(rated) * num_shards - len(todo))


def build(name: str, out, *, lengths: Mapping[str, int] = DEFAULT_LENGTHS, num_shards: int = 4,
          workers: int = 1, split: str = "train", modules: Sequence[str] = (), data_dir: str | None = None,
          say=print) -> dict:
  """Caches `name` under `out` (see the module doc); returns the manifest. Resumes: shards
  and members already written are kept."""
  if workers < 1:
    raise CacheError(f"--workers={workers} must be at least 1")
  if workers > 1 and str(out).startswith("ram://"):
    raise CacheError("--out=ram://... lives in one process's memory: use --workers=1 with it")
  plan = plan_build(name, out, lengths=lengths, num_shards=num_shards, split=split)
  settings, todo, done_before = plan.settings, plan.todo, plan.done_before
  out, rated = settings.out, plan.manifest["members"]
  manifest_path = plan.manifest_path
  start = time.perf_counter()
  say(f"cache {name}: {len(rated)} member(s) x {num_shards} shard(s) into {out}"
      + (f"; {done_before} shard(s) already complete" if done_before else ""))
  kept = 0
  if workers == 1:
    results = (_write_shard(settings, v, k) for v, k in todo)
  else:
    import concurrent.futures  # pylint: disable=g-import-not-at-top
    import multiprocessing  # pylint: disable=g-import-not-at-top
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
        initargs=(data_dir or os.environ.get(catalogue.DATA_DIR_ENV), list(modules)))
    futures = [pool.submit(_write_shard, settings, v, k) for v, k in todo]
    results = (f.result() for f in concurrent.futures.as_completed(futures))
  written = 0
  try:
    for _, _, examples in results:
      if examples < 0:
        kept += 1
      else:
        written += examples
  finally:
    if workers > 1:
      pool.shutdown(cancel_futures=True)
  totals = {v: _finish_member(settings, v) for v, _ in rated}
  manifest = {**plan.manifest, "examples": totals}
  _write_json(manifest_path, manifest)
  seconds = time.perf_counter() - start
  say(f"cache {name}: {sum(totals.values())} examples in {len(rated)} member(s); rendered and "
      f"tokenized {written} in {seconds:.1f} s ({written / max(seconds, 1e-9):.0f} examples/s)"
      + (f"; kept {kept} finished shard(s)" if kept else "") + f"; manifest {manifest_path}")
  return manifest


# --- reading ----------------------------------------------------------------------------


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
      return str(d), _read_json(path)
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
  paths = [d / _shard_name(split, k, n) for k in range(n)]
  checked = []

  def records(path):
    try:
      for r in _read_records(path):
        yield _from_example(r)
    except CacheError:
      raise
    except Exception as e:  # pylint: disable=broad-except  (a corrupt record: protobuf, struct, ...)
      raise CacheError(f"{path} is corrupt ({type(e).__name__}: {str(e)[:200]}); rebuild the cache with "
                       "`flan-jax data cache` into a new --out") from None

  def examples():
    if not checked:  # once, when the member is first read: whole, and (local) checksums intact
      info_path = d / f"info.{split}.json"
      info = _read_json(info_path) if storage.exists(info_path) else {"num_shards": n}
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
  from flan_jax.tasks import templates as tpl  # pylint: disable=g-import-not-at-top
  api = _api()
  dirs = cache_dirs()
  lengths = dict(sequence_length or {})
  found = find_manifest(task.name, split, dirs)
  if found is None:
    raise _missing(task.name, split, dirs, lengths or DEFAULT_LENGTHS)
  root, manifest = found
  check_fresh(task.name, root, manifest, task.output_features["targets"].vocabulary, lengths, split)
  rated = [(v, float(r)) for v, r in manifest["members"]]
  readers = {v: member_reader(root, v, split, manifest["num_shards"]) for v, _ in rated}
  source = api.sampled_mixture(task.name)
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
      recorded = _read_json(info)
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
    path = d / _shard_name(split, k, n)
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


def _task_classes():
  import seqio  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  class FlanVariantTask(seqio.Task):
    """A FLAN variant: with use_cached, the cache is checked (present, same lengths and
    vocabulary) before seqio reads it."""

    def get_dataset(self, sequence_length=None, split="train", use_cached=False, **kwargs):  # pylint: disable=arguments-differ
      if use_cached:
        check_member(self, sequence_length, split)
      return super().get_dataset(sequence_length, split=split, use_cached=use_cached, **kwargs)

  class SampledMixtureTask(seqio.Task):
    """A sampled Flan mixture: with use_cached, its members are read from the cache
    (`sampled_dataset`) and the steps after tokenization run as without it."""

    def get_dataset(self, sequence_length=None, split="train", use_cached=False, shuffle=True,  # pylint: disable=arguments-differ
                    shuffle_buffer_size=None, seed=None, shard_info=None, num_epochs=1,
                    trim_output_features=True, try_in_mem_cache=True):
      if not use_cached:
        return super().get_dataset(sequence_length, split=split, use_cached=False, shuffle=shuffle,
                                   shuffle_buffer_size=shuffle_buffer_size, seed=seed, shard_info=shard_info,
                                   num_epochs=num_epochs, trim_output_features=trim_output_features,
                                   try_in_mem_cache=try_in_mem_cache)
      ds = sampled_dataset(self, sequence_length, split, seed, shard_info)
      if num_epochs != 1:
        ds = ds.repeat(num_epochs)
      # The cache holds what `tokenize` (the first step) gives; the rest runs as without it.
      if self.preprocessors[0] is not seqio.preprocessors.tokenize:
        raise CacheError(f"{self.name}: cached mixtures expect `tokenize` as their first preprocessor")
      ds = self._preprocess_dataset(ds, self.preprocessors[1:], sequence_length=sequence_length)  # pylint: disable=protected-access
      ds = self._validate_preprocessing(ds)  # pylint: disable=protected-access
      if trim_output_features:
        ds = self._trim_output_features(ds, sequence_length=sequence_length)  # pylint: disable=protected-access
      if shuffle:
        ds = ds.shuffle(shuffle_buffer_size or self._shuffle_buffer_size, seed=seed)  # pylint: disable=protected-access
      return ds.prefetch(tf.data.experimental.AUTOTUNE)

  return FlanVariantTask, SampledMixtureTask


FlanVariantTask = SampledMixtureTask = None  # set on first use (seqio imported lazily)


def task_classes():
  global FlanVariantTask, SampledMixtureTask  # pylint: disable=global-statement
  if FlanVariantTask is None:
    FlanVariantTask, SampledMixtureTask = _task_classes()
  return FlanVariantTask, SampledMixtureTask


# --- the manifest, for launchers ------------------------------------------------------------


def cached_here(name: str, cache_dir: str, split: str = "train") -> dict | None:
  """The manifest of `name` under `cache_dir` when it is complete there, else None."""
  path = storage.path(cache_dir) / name / MANIFEST.format(split=split)
  return _read_json(path) if path.exists() else None


def main(args) -> int:
  """`flan-jax data cache` (arguments parsed in tasks/prepare.py)."""
  from flan_jax.tasks import tasks_cli  # pylint: disable=g-import-not-at-top
  if args.data_dir:
    os.environ[catalogue.DATA_DIR_ENV] = args.data_dir
  modules = [*tasks_cli.MIXTURE_MODULES, *args.task_module]
  try:
    from flan_jax.tasks import lookup  # pylint: disable=g-import-not-at-top  (seqio: not for --help)
    lookup.import_task_modules(modules)
    lengths = {"inputs": args.inputs_length, "targets": args.targets_length}
    if args.engine == "beam":
      from flan_jax.tasks import cache_beam  # pylint: disable=g-import-not-at-top
      cache_beam.build(args.name, args.out, lengths=lengths, num_shards=args.shards, split=args.split,
                       modules=modules, data_dir=args.data_dir, beam_args=args.beam_args, dry_run=args.dry_run)
    elif args.dry_run:
      raise CacheError("--dry_run shows a Beam pipeline: add --engine=beam")
    else:
      build(args.name, args.out, lengths=lengths, num_shards=args.shards, workers=args.workers, split=args.split,
            modules=modules, data_dir=args.data_dir)
  except FileNotFoundError as e:  # its args[0] is the errno: say the file
    print(f"flan-jax data cache: {e.strerror or e}: {e.filename}" if e.filename else f"flan-jax data cache: {e}",
          file=sys.stderr)
    return 2
  except (ValueError, KeyError) as e:
    print(f"flan-jax data cache: {e.args[0] if e.args else e}", file=sys.stderr)
    return 2
  return 0
