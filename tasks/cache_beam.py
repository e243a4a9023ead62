"""`flan-jax data cache NAME --out=DIR --engine=beam [Beam options]`: the cache built by Apache Beam.

The local command (`tasks/cache.py`) renders and tokenizes (member, shard) work items with
its own processes on one machine: the fast default. For a mixture too large for one machine
(Flan 2022 with its real sources), the same work items are handed to Apache Beam, so that
Dataflow, Flink or Spark spread them over a cluster:

    flan-jax data cache flan2022_submix --out=gs://BUCKET/flan_cache --shards=64 --engine=beam \\
        --runner=DataflowRunner --project=P --region=us-central1 --temp_location=gs://BUCKET/tmp \\
        --setup_file=./setup.py --data_dir=gs://BUCKET/flan_data

The pipeline:

    Create(work items) -> Reshuffle -> RenderTokenizeWrite (one shard file each, written aside
    and renamed into place, with its count file) -> GroupByKey(member) -> FinishMember (counts
    verified, info/stats/COMPLETED written) -> CombineGlobally -> WriteManifest

Each step is the local command's own function (`cache._write_shard`, `cache._finish_member`),
so the cache is the same, file for file: seqio's layout with the `flan_jax` info block (lengths,
few-shot budget, vocabulary), the `index` field and the mixture manifest, and USE_CACHED_TASKS
trains from it for single tasks and sampled Flan mixtures alike. seqio's own Beam writer
(`seqio.scripts.cache_tasks_main`) is not used: it writes records in hash order without the
`index` field, the info block or the manifest that sampled mixtures need. A resumed run keeps
finished shards and members, as the local command does.

Runners: Beam options after the command's own flags pass through (`--runner`, `--project`,
`--region`, `--temp_location`, `--num_workers`, ...). `--runner=DirectRunner` (the default)
runs in this process on Beam's FnApiRunner (`--direct_num_workers=N
--direct_running_mode=multi_processing` for N processes), never trying to download the Prism
runner. Workers of a remote runner need flan_jax installed (`--setup_file=./setup.py` or
`--requirements_file`) and the data dir and `--out` on shared storage (gs://...). `--dry_run`
prints the pipeline and the options it would submit, and submits nothing.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence

from flan_jax.tasks import cache
from flan_jax.tasks import cache_reader
from flan_jax.tasks import storage
from flan_jax.tasks.collections import catalogue

DEFAULT_RUNNER = "DirectRunner"
REMOTE_RUNNERS = ("DataflowRunner", "FlinkRunner", "SparkRunner", "PortableRunner", "PrismRunner")
_DATAFLOW_REQUIRED = ("project", "region", "temp_location")


@contextlib.contextmanager
def _quiet(*loggers: str):
  """Raises loggers to ERROR for a block: Beam warns at import about optional Google Cloud
  clients it does not need here, and once per parse about options it discards."""
  saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
  for logger, _ in saved:
    logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    for logger, level in saved:
      logger.setLevel(level)


def _import_beam():
  try:
    with _quiet("", "apache_beam"):
      import apache_beam as beam  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise cache_reader.CacheError("--engine=beam needs Apache Beam: pip install -c constraints.txt -e \".[beam]\"") from None
  return beam


def _make_dofns(beam):
  """The pipeline's DoFns; defined once Beam is imported (the module imports without it)."""

  class _Setup(beam.DoFn):
    def __init__(self, settings: cache.Settings, data_dir: str | None, modules: Sequence[str]):
      super().__init__()
      self.settings, self.data_dir, self.modules = settings, data_dir, list(modules)

    def setup(self):  # each worker process registers the tasks once
      cache._worker_init(self.data_dir, self.modules)  # pylint: disable=protected-access

  class RenderTokenizeWrite(_Setup):
    def process(self, item):
      variant, k = item
      _, _, examples = cache._write_shard(self.settings, variant, k)  # pylint: disable=protected-access
      yield variant, examples

  class FinishMember(_Setup):
    def process(self, grouped):
      variant, _ = grouped
      yield variant, cache._finish_member(self.settings, variant)  # pylint: disable=protected-access

  class WriteManifest(beam.DoFn):  # writes one JSON file: no tasks to register
    def __init__(self, manifest: dict, path: str):
      super().__init__()
      self.manifest, self.path = manifest, path

    def process(self, totals):
      members = [v for v, _ in self.manifest["members"]]
      missing = [v for v in members if v not in totals]
      if missing:
        raise cache_reader.CacheError(f"the pipeline finished without members {missing[:3]}")
      cache._write_json(self.path, {**self.manifest, "examples": {v: totals[v] for v in members}})  # pylint: disable=protected-access
      yield self.path

  return RenderTokenizeWrite, FinishMember, WriteManifest


def pipeline_options(beam_args: Sequence[str]):
  """Beam's PipelineOptions from the pass-through arguments, with the runner defaulted."""
  from apache_beam.options import pipeline_options as po  # pylint: disable=g-import-not-at-top
  args = list(beam_args)
  if not any(a == "--runner" or a.startswith("--runner=") for a in args):
    args.append(f"--runner={DEFAULT_RUNNER}")
  with _quiet("apache_beam.options.pipeline_options"):
    options = po.PipelineOptions(args)
    known = options.get_all_options()
    unknown = [a for a in options.get_all_options(retain_unknown_options=True) if a not in known]
  if unknown:
    raise cache_reader.CacheError(f"unknown Beam pipeline option(s) {['--' + a for a in unknown]}: give Beam's own "
                           "options (--runner, --project, --region, --temp_location, --num_workers, ...)")
  return options


def _runner(options):
  """The runner object for `options`: DirectRunner as Beam's in-process FnApiRunner (no Prism)."""
  name = options.get_all_options()["runner"] or DEFAULT_RUNNER
  if name in ("DirectRunner", "FnApiRunner"):
    from apache_beam.runners.portability.fn_api_runner import fn_runner  # pylint: disable=g-import-not-at-top
    return fn_runner.FnApiRunner()
  return name


def check_remote(options, out: str, data_dir: str | None) -> None:
  """A remote runner's workers must reach --out and the data; Dataflow needs its options."""
  opts = options.get_all_options()
  name = opts["runner"]
  if name == "DataflowRunner":
    missing = [f"--{k}" for k in _DATAFLOW_REQUIRED if not opts.get(k)]
    if missing:
      raise cache_reader.CacheError(f"--runner=DataflowRunner needs {', '.join(missing)}")
  if name in REMOTE_RUNNERS and name != "PrismRunner":
    local = [f"{flag} {value}" for flag, value in (("--out", out), ("--data_dir", data_dir))
             if value and not storage.is_url(value)]
    if local:
      raise cache_reader.CacheError(f"{name} workers cannot read this machine's paths ({'; '.join(local)}): give "
                             "gs:// (or another shared store's) URLs")


def _top_level_transforms(beam, pipeline) -> list[str]:
  """The labels of a pipeline's top-level transforms, in the order Beam visits them."""
  labels = []

  class Visitor(beam.pipeline.PipelineVisitor):
    def enter_composite_transform(self, node):
      self.visit_transform(node)

    def visit_transform(self, node):
      if node.full_label and "/" not in node.full_label and node.full_label not in labels:
        labels.append(node.full_label)

  pipeline.visit(Visitor())
  return labels


def build(name: str, out, *, lengths: Mapping[str, int] = cache_reader.DEFAULT_LENGTHS, num_shards: int = 4,
          split: str = "train", modules: Sequence[str] = (), data_dir: str | None = None,
          beam_args: Sequence[str] = (), dry_run: bool = False, say=print) -> dict:
  """Caches `name` under `out` with an Apache Beam pipeline (see the module doc); returns the
  manifest, or with `dry_run` the plan {"runner", "options", "transforms", "work_items"}."""
  beam = _import_beam()
  plan = cache.plan_build(name, out, lengths=lengths, num_shards=num_shards, split=split, check_done=not dry_run)
  settings, todo, manifest, manifest_path = plan.settings, plan.todo, plan.manifest, plan.manifest_path
  options = pipeline_options(beam_args)
  check_remote(options, settings.out, data_dir)
  data_dir = data_dir or os.environ.get(catalogue.DATA_DIR_ENV)
  render, finish, write_manifest = _make_dofns(beam)
  items = sorted(todo)
  members = [v for v, _ in manifest["members"]]
  pipeline = beam.Pipeline(runner=_runner(options) if not dry_run else "BundleBasedDirectRunner", options=options)
  written = (pipeline
             | "WorkItems" >> beam.Create(items)
             | "Reshuffle" >> beam.Reshuffle()
             | "RenderTokenizeWrite" >> beam.ParDo(render(settings, data_dir, modules)))
  # Members whose shards were all done before still pass through FinishMember (it checks them).
  pending = {v for v, _ in items}
  done = pipeline | "FinishedMembers" >> beam.Create([(v, -1) for v in members if v not in pending])
  (((written, done) | "Both" >> beam.Flatten())
   | "ByMember" >> beam.GroupByKey()
   | "FinishMember" >> beam.ParDo(finish(settings, data_dir, modules))
   | "Totals" >> beam.combiners.ToDict()
   | "WriteManifest" >> beam.ParDo(write_manifest(manifest, str(manifest_path))))
  runner = options.get_all_options()["runner"]
  if dry_run:
    transforms = _top_level_transforms(beam, pipeline)
    shown = {k: v for k, v in options.get_all_options(drop_default=True).items() if v is not None}
    say(f"cache {name} (dry run): {len(items)} work item(s) ({len(members)} member(s) x {num_shards} shard(s); "
        f"finished ones are skipped when it runs) into {settings.out}, runner {runner}")
    say("pipeline: " + " -> ".join(transforms))
    say("options: " + " ".join(f"--{k}={v}" for k, v in sorted(shown.items())))
    return {"runner": runner, "options": shown, "transforms": transforms, "work_items": len(items)}
  say(f"cache {name}: {len(members)} member(s) x {num_shards} shard(s) into {settings.out} on Beam ({runner}); "
      f"{len(members) * num_shards - len(items)} shard(s) already complete")
  result = pipeline.run()
  result.wait_until_finish()
  return cache_reader.read_json(manifest_path)  # pylint: disable=protected-access
