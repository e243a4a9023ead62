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

import dataclasses
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence

import seqio
import tensorflow as tf
from tensorflow.core.example import example_pb2, feature_pb2

from flan_jax.tasks import api, cache_reader, lookup, storage, tasks_cli, templates



# --- what a name caches -----------------------------------------------------------------


def members(name: str, split: str = "train") -> tuple[str, list[tuple[str, float]]]:
  """(kind, [(variant, rate)]) of a registered name: a sampled Flan mixture (its rates,
  read from the members' example counts), a seqio Mixture or family of FLAN variants, or
  one variant (rate 1)."""
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
    raise cache_reader.CacheError(f"{name!r}: {plain[:3]} are not FLAN task variants (registered by "
                     "api.register_flan_task); cache those with seqio's seqio_cache_tasks")
  return kind, leaves




# --- TFRecords ---------------------------------------------------------------------------


def _to_example(row: dict) -> bytes:
  feats = {}
  for k in ("inputs", "targets", *cache_reader.INT_FEATURES):
    v = row[k]
    feats[k] = feature_pb2.Feature(int64_list=feature_pb2.Int64List(
        value=list(v) if isinstance(v, (list, tuple)) else [int(v)]))
  for k in cache_reader.STR_FEATURES:
    feats[k] = feature_pb2.Feature(bytes_list=feature_pb2.BytesList(value=[row[k].encode("utf-8")]))
  return example_pb2.Example(features=feature_pb2.Features(feature=feats)).SerializeToString(deterministic=True)


FEATURES = {"inputs": {"shape": [None], "dtype": "int32"},
            "targets": {"shape": [None], "dtype": "int32"},
            **{k: {"shape": [], "dtype": "string"} for k in cache_reader.STR_FEATURES},
            **{k: {"shape": [], "dtype": "int32"} for k in cache_reader.INT_FEATURES}}


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
  d = storage.path(settings.out) / variant
  n = settings.num_shards
  final, count = d / cache_reader.shard_name(settings.split, k, n), d / f"{cache_reader.shard_name(settings.split, k, n)}.count.json"
  renderer, fmt = api.variant(variant)
  vocab = renderer.vocabulary
  if count.exists() and final.exists():
    _same_build(settings, cache_reader.read_json(count), vocab, where=count)
    return variant, k, -1
  d.mkdir(parents=True, exist_ok=True)
  tmp = d / f".{final.name}.tmp-{os.getpid()}"
  examples = tokens_in = tokens_out = max_in = max_out = 0
  budget = renderer.budget_for(settings.feature_lengths["inputs"])
  with tf.io.TFRecordWriter(str(tmp)) as w:
    for r in renderer.render(settings.split, fmt, shard=(k, n), budget=budget):
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
                      "task_feature_lengths": settings.feature_lengths, "vocabulary": cache_reader.vocabulary_fields(vocab)})
  return variant, k, examples


def _same_build(settings: Settings, recorded: Mapping, vocab, *, where) -> None:
  """A rerun keeps finished work only if it was built with the same lengths and vocabulary."""
  want = (settings.feature_lengths, cache_reader.vocabulary_fields(vocab)["sha256"])
  have = (dict(recorded.get("task_feature_lengths", {})), recorded.get("vocabulary", {}).get("sha256"))
  if have != want:
    raise cache_reader.CacheError(f"{where} was built for TASK_FEATURE_LENGTHS {have[0]} (vocabulary sha256 {have[1]}), this "
                     f"build is for {want[0]} ({want[1]}): give a new --out, or delete {settings.out} first")


def _write_json(path, value) -> None:
  """Writes JSON aside, then renames it into place."""
  path = storage.path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
  with storage.open(tmp, "w") as f:
    f.write(json.dumps(value, indent=1, sort_keys=True) + "\n")
  storage.replace(tmp, path)


def _finish_member(settings: Settings, variant: str) -> int:
  """Verifies a member's shards by counting their records and writes its info, stats and
  COMPLETED; returns its number of examples."""
  d = storage.path(settings.out) / variant
  renderer, fmt = api.variant(variant)
  if cache_reader.completed(d, settings.split):
    info = cache_reader.read_json(d / f"info.{settings.split}.json")
    _same_build(settings, info["flan_jax"], renderer.vocabulary, where=d / f"info.{settings.split}.json")
    if int(info["num_shards"]) != settings.num_shards:
      raise cache_reader.CacheError(f"{d} holds {info['num_shards']} shards, this build asks for {settings.num_shards}: give a "
                       f"new --out, or the same --shards")
    return int(info["flan_jax"]["examples"])
  n, split = settings.num_shards, settings.split
  counts = [cache_reader.read_json(d / f"{cache_reader.shard_name(split, k, n)}.count.json") for k in range(n)]
  for k, c in enumerate(counts):
    found = sum(1 for _ in cache_reader.read_records(d / cache_reader.shard_name(split, k, n)))
    if found != c["examples"]:
      raise cache_reader.CacheError(f"{d / cache_reader.shard_name(split, k, n)}: {found} records, its count file says "
                       f"{c['examples']}; delete both and rerun the same `flan-jax data cache`")
  total = sum(c["examples"] for c in counts)
  shard_bytes = [storage.size(d / cache_reader.shard_name(split, k, n)) for k in range(n)]
  if not fmt.fewshot:  # zero-shot formats render every source example
    expected = renderer.source.num_examples(split)
    if expected != total:
      raise cache_reader.CacheError(f"{variant}: cached {total} {split} examples, its source has {expected}")
  stats = {"examples": total, **{key: sum(c[key] for c in counts) for key in ("inputs_tokens", "targets_tokens")},
           **{key: max(c[key] for c in counts) for key in ("inputs_max_tokens", "targets_max_tokens")}}
  info = {"features": FEATURES, "num_shards": n, "seqio_version": seqio.__version__,
          "flan_jax": {"format": cache_reader.FORMAT, "task": variant, "split": split, "examples": total,
                       "shard_examples": [c["examples"] for c in counts], "shard_bytes": shard_bytes,
                       "task_feature_lengths": settings.feature_lengths,
                       "fewshot_budget": _budget(settings.feature_lengths),
                       "vocabulary": cache_reader.vocabulary_fields(renderer.vocabulary)}}
  _write_json(d / f"info.{split}.json", info)
  _write_json(d / f"stats.{split}.json", stats)
  for marker in (f"COMPLETED.{split}", "COMPLETED"):
    with storage.open(d / marker, "w") as f:
      f.write("")
  return total


def _budget(lengths) -> int:
  """The few-shot budget of prompts cached for these lengths (tasks registered with their own
  `max_input_tokens` keep theirs)."""
  return templates.fewshot_budget(lengths["inputs"])


def _worker_init(data_dir: str | None, modules: Sequence[str]) -> None:
  lookup.import_task_modules(list(modules), data_dir=data_dir)


@dataclasses.dataclass(frozen=True)
class BuildPlan:
  """What a cache build of a name will do, for either engine (local processes or Beam)."""
  settings: Settings
  todo: list[tuple[str, int]]  # (member, shard) work items not yet complete
  manifest: dict               # the manifest to write, less the members' example counts
  manifest_path: object
  done_before: int             # work items of members already complete


def plan_build(name: str, out, *, lengths: Mapping[str, int] = cache_reader.DEFAULT_LENGTHS, num_shards: int = 4,
               split: str = "train", check_done: bool = True) -> BuildPlan:
  """The work of a build; `check_done=False` does not look at `out` (every item is listed)."""
  if num_shards < 1:
    raise cache_reader.CacheError(f"--shards={num_shards} must be at least 1")
  lengths = {"inputs": int(lengths["inputs"]), "targets": int(lengths["targets"])}
  out = str(out).rstrip("/") if storage.is_url(out) else os.path.abspath(os.path.expanduser(str(out)))
  kind, rated = members(name, split)
  vocab = api.variant(rated[0][0])[0].vocabulary
  settings = Settings(out, split, num_shards, tuple(sorted(lengths.items())))
  todo = [(v, k) for v, _ in rated if not (check_done and cache_reader.completed(storage.path(out) / v, split))
          for k in range(num_shards)]  # one marker check per member, not per shard
  manifest = {"format": cache_reader.FORMAT, "name": name, "kind": kind, "split": split,
              "members": [[v, r] for v, r in rated], "task_feature_lengths": lengths,
              "fewshot_budget": _budget(lengths), "vocabulary": cache_reader.vocabulary_fields(vocab), "num_shards": num_shards}
  return BuildPlan(settings, todo, manifest, storage.path(out) / name / cache_reader.MANIFEST.format(split=split),
                   len(rated) * num_shards - len(todo))


def build(name: str, out, *, lengths: Mapping[str, int] = cache_reader.DEFAULT_LENGTHS, num_shards: int = 4,
          workers: int = 1, split: str = "train", modules: Sequence[str] = (), data_dir: str | None = None,
          say=print) -> dict:
  """Caches `name` under `out` (see the module doc); returns the manifest. Resumes: shards
  and members already written are kept."""
  if workers < 1:
    raise cache_reader.CacheError(f"--workers={workers} must be at least 1")
  if workers > 1 and str(out).startswith("ram://"):
    raise cache_reader.CacheError("--out=ram://... lives in one process's memory: use --workers=1 with it")
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
        initargs=(data_dir, list(modules)))
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




def main(args) -> int:
  """`flan-jax data cache` (arguments parsed in tasks/data_cli.py)."""
  modules = [*tasks_cli.MIXTURE_MODULES, *args.task_module]
  try:
    lookup.import_task_modules(modules, data_dir=args.data_dir)
    lengths = {"inputs": args.inputs_length, "targets": args.targets_length}
    if args.engine == "beam":
      from flan_jax.tasks import cache_beam  # pylint: disable=g-import-not-at-top
      cache_beam.build(args.name, args.out, lengths=lengths, num_shards=args.shards, split=args.split,
                       modules=modules, data_dir=args.data_dir, beam_args=args.beam_args, dry_run=args.dry_run)
    elif args.dry_run:
      raise cache_reader.CacheError("--dry_run shows a Beam pipeline: add --engine=beam")
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
