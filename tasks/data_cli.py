"""`flan-jax data`: prepare (fetch a collection or benchmark, `prepare`), cache (render and
tokenize once, `cache` / `cache_beam`) and stats (a mixture's shares and lengths, `stats`)."""
from __future__ import annotations

import argparse

from flan_jax.tasks import prepare as prepare_lib
from flan_jax.tasks.collections import catalogue


def main(argv=None) -> int:
  raw = argparse.RawDescriptionHelpFormatter
  p = argparse.ArgumentParser(prog="flan-jax data", formatter_class=raw,
                              description="Fetch and cache Flan 2022 collections and benchmarks (needs network).")
  sub = p.add_subparsers(dest="command", required=True, metavar="{prepare,cache,stats}")
  prep = sub.add_parser("prepare", help="fetch and cache a collection or benchmark", formatter_class=raw,
                        description=prepare_lib.__doc__.split("\n\n", 1)[1].strip())
  prep.add_argument("collection", choices=list(prepare_lib.CHOICES) + ["all"], metavar="WHAT",
                    help=f"one of {', '.join(prepare_lib.CHOICES)}, or all (every one of them)")
  prep.add_argument("--data_dir", default=None,
                    help=f"where to cache: a path or a URL such as gs://BUCKET/flan (default "
                         f"${catalogue.DATA_DIR_ENV}, else {catalogue.DEFAULT_DATA_DIR})")
  prep.add_argument("--timeout", type=float, default=600, help="seconds per download (default 600)")
  cache = sub.add_parser(
      "cache", help="render and tokenize a task or mixture once into sharded TFRecords (USE_CACHED_TASKS)",
      formatter_class=raw, description="Renders and tokenizes NAME (a Flan mixture, a family, a variant) into "
      "seqio's cache layout under --out; training reads it with --gin.USE_CACHED_TASKS=True "
      "--gin.train.seqio_cache_dirs=\"['OUT']\". Resumes after a kill (finished shards are kept).")
  cache.add_argument("name", metavar="MIXTURE_OR_TASK")
  cache.add_argument("--out", required=True, help="cache dir: a path or a URL such as gs://BUCKET/flan_cache")
  cache.add_argument("--shards", type=int, default=4, help="TFRecord files per member (default 4)")
  cache.add_argument("--workers", type=int, default=1, help="processes rendering shards in parallel (default 1)")
  cache.add_argument("--inputs_length", type=int, default=2048,
                     help="TASK_FEATURE_LENGTHS['inputs'] of the runs that read it (sets the few-shot budget; default 2048)")
  cache.add_argument("--targets_length", type=int, default=512,
                     help="TASK_FEATURE_LENGTHS['targets'] of the runs that read it (default 512)")
  cache.add_argument("--split", default="train")
  cache.add_argument("--data_dir", default=None, help="prepared data to read (default $FLAN_JAX_DATA_DIR)")
  cache.add_argument("--task_module", action="append", default=[], metavar="MODULE",
                     help="also import MODULE to register tasks (repeatable)")
  cache.add_argument("--engine", choices=("local", "beam"), default="local",
                     help="local: --workers processes on this machine (default, fast); beam: an Apache Beam "
                     "pipeline, for Dataflow/Flink/Spark; Beam options such as --runner=DataflowRunner "
                     "--project=P --region=R --temp_location=gs://... follow (pip install \".[beam]\")")
  cache.add_argument("--dry_run", action="store_true",
                     help="with --engine=beam: print the pipeline and options it would submit, run nothing")
  stats = sub.add_parser("stats", help="shares, formats and lengths of a mixture's rendered examples")
  stats.add_argument("mixture")
  stats.add_argument("--n", type=int, default=20_000, help="examples to render (default 20000)")
  stats.add_argument("--seed", type=int, default=0)
  stats.add_argument("--inputs_length", type=int, default=2048, help="input budget in tokens (default 2048)")
  stats.add_argument("--data_dir", default=None)
  args, extra = p.parse_known_args(argv)
  if extra and not (args.command == "cache" and args.engine == "beam"):
    p.error(f"unrecognized arguments: {' '.join(extra)}"
            + (" (Beam pipeline options need --engine=beam)" if args.command == "cache" else ""))
  args.beam_args = extra
  if args.command == "cache":
    from flan_jax.tasks import cache as cache_lib  # pylint: disable=g-import-not-at-top
    return cache_lib.main(args)
  if args.command == "stats":
    from flan_jax.tasks import stats as stats_lib  # pylint: disable=g-import-not-at-top
    return stats_lib.run(args)
  failures = prepare_lib.prepare(args.collection, args.data_dir, timeout=args.timeout)
  for f in failures:
    print(f"could not get: {f}")
  print(f"{len(failures)} item(s) missing under {catalogue.data_dir(args.data_dir)}")
  return 1 if failures else 0


if __name__ == "__main__":
  raise SystemExit(main())
