"""`flan-jax sweep`: the command line of the paper's scaling study (model size x number of tasks x CoT) as one gin file.

    flan-jax sweep --grid=gin/sweeps/paper_scaling.gin --list
    flan-jax sweep --grid=gin/sweeps/paper_scaling.gin --root=gs://B/scaling --target=tpu-vm \\
        --zone=us-central2-b --max_in_flight=8 --dry_run
    flan-jax sweep status --root=gs://B/scaling
    flan-jax sweep run --grid=gin/sweeps/mini_scaling.gin --root=/tmp/mini_scaling
    flan-jax sweep report --root=/tmp/mini_scaling

A grid file binds `SweepGrid` (model sizes -> recipe + overrides, task counts, with/without
CoT, the mixture name pattern, the evaluation recipe); it is the single source of the
study. Each cell becomes a `Run`: a name, a recipe, gin overrides, MODEL_DIR = ROOT/NAME
and the run's training FLOPs (`flops.train_step_flops` x TRAIN_STEPS).

  (no verb)  --list prints the runs. --target=tpu-vm|xpk|slurm|skypilot submits every run
             through `flan-jax launch` and returns once all are submitted: the runs go on
             detached on their machines (one wheel of this checkout is built for all of
             them). --max_in_flight=N keeps at most N runs started and not yet ended,
             polling every --poll_s seconds. --topology=T (or SIZE=T,SIZE=T,... per model
             size) replaces the recipes' TPU slices, e.g. with GPU clusters for slurm and
             skypilot. Other flags (--zone, --cleanup, ...) go to `flan-jax launch`;
             --dry_run prints every command and runs none.
  status     where each submitted run is: the cluster's state of its job, the last
             logged training step, and whether it has evaluation results.
  run        trains then evaluates every run here, one after another, each in a fresh
             process (`flan-jax train`'s then `flan-jax eval`'s entry point), then reports.
  report     collects ROOT/NAME/eval/results_<step>.json into ROOT/report.md (a table per
             benchmark column: rows model size, columns task count +- CoT) and ROOT/*.png.

`--gin.SweepGrid.X=V` rebinds the grid; any other `--gin.K=V` is added to every run.
ROOT/sweep.json records the runs (and where they were submitted), so `status` and
`report` need only --root.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from flan_jax.runtime import gin_utils
from flan_jax.sweep.grid import expand, format_runs, load_grid
from flan_jax.sweep.manifest import MANIFEST, read_manifest
from flan_jax.sweep.runner import run_local, run_one
from flan_jax.sweep.sweep_report import report

CLUSTER_TARGETS = ("tpu-vm", "xpk", "slurm", "skypilot")  # `flan-jax sweep --target=T` (sweep/submit.py)


def _split(argv: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
  """(SweepGrid bindings, per-run bindings, other args)."""
  files, bindings, rest = gin_utils.split_gin_args(argv)
  if files:
    raise ValueError(f"flan-jax sweep: --gin_file {files} is not used; the grid file names the recipes")
  grid_b = [b for b in bindings if b.startswith("SweepGrid.")]
  return grid_b, [b for b in bindings if not b.startswith("SweepGrid.")], rest


VERBS = ("run", "status", "report")


def _parser(verb: str | None) -> argparse.ArgumentParser:
  raw = argparse.RawDescriptionHelpFormatter
  if verb is None:
    p = argparse.ArgumentParser(
        prog="flan-jax sweep", formatter_class=raw,
        usage="flan-jax sweep [run|status|report] --grid=G [--root=D] [--list | --target=T [...] [--dry_run]]",
        description=__doc__.split("\n\n", 1)[1].split("`--gin.SweepGrid")[0].rstrip(),
        epilog="`flan-jax sweep run --help`, `status --help`, `report --help` describe the verbs.\n"
               "--gin.SweepGrid.X=V rebinds the grid; any other --gin.K=V is added to every run.")
    p.add_argument("--grid", required=True, help="sweep gin file, e.g. gin/sweeps/paper_scaling.gin")
    p.add_argument("--root", help="where the runs' MODEL_DIRs go (default: SweepGrid.root)")
    p.add_argument("--list", action="store_true", help="print the runs and their FLOPs, launch nothing")
    p.add_argument("--target", choices=CLUSTER_TARGETS,
                   help="submit every run there through `flan-jax launch` (its flags, e.g. --zone, pass through)")
    p.add_argument("--max_in_flight", type=int, default=0,
                   help="at most N runs started and not yet ended; 0 (default): submit all at once")
    p.add_argument("--poll_s", type=float, default=60, help="seconds between state polls (default 60)")
    p.add_argument("--topology", help="one topology for every run (h100x64, v4-128, ...) or one per model size: "
                                      "t5-small=h100x8,t5-xl=h100x32,... (default: each recipe's TOPOLOGY)")
    p.add_argument("--dry_run", action="store_true", help="print every command the submission would run; run none")
    return p
  p = argparse.ArgumentParser(prog=f"flan-jax sweep {verb}", formatter_class=raw, description={
      "run": "Train then evaluate every run of the grid on this machine, one after another, each in a fresh\n"
             "process; runs with results are skipped (a stopped sweep resumes); then write the report.",
      "status": "Where each run of a submitted sweep is: the cluster's state of its job (squeue/sacct, sky queue,\n"
                "xpk workload list, or worker 0's exit-code file on a TPU VM), the last logged training step\n"
                "(MODEL_DIR/train_metrics.jsonl) and whether it has evaluation results.",
      "report": "Collect ROOT/RUN/eval/results_<step>.json into ROOT/report.md (a table per benchmark column)\n"
                "and plots ROOT/tasks_*.png, ROOT/size_*.png.",
  }[verb])
  p.add_argument("--grid", required=verb == "run", help="sweep gin file (default for status/report: ROOT/sweep.json)")
  p.add_argument("--root", required=verb == "status", help="the sweep's root (default: SweepGrid.root)")
  return p


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if argv and argv[0] == "_one":  # internal: one run of `sweep run`, in its own process
    cut = argv.index("--")
    return run_one(argv[1:cut], argv[cut + 1:])
  verb = argv.pop(0) if argv and argv[0] in VERBS else None
  grid_b, run_b, rest = _split(argv)
  p = _parser(verb)
  if verb is None:
    args, launch_args = p.parse_known_args(rest)
  else:
    args, launch_args = p.parse_args(rest), []

  if verb == "status":
    from flan_jax.sweep import submit  # pylint: disable=g-import-not-at-top  (launch's modules: not for --help)
    print(submit.status(args.root), flush=True)
    return 0
  if verb == "report":
    if args.grid:
      grid = load_grid(args.grid, grid_b)
      runs, timings, title = expand(grid, args.root, run_b), {}, grid.name
      if os.path.isfile(os.path.join(args.root or grid.root, MANIFEST)):
        timings = read_manifest(args.root or grid.root)[2]
    else:
      if not args.root:
        p.error("give --root=DIR (a sweep root with sweep.json) or --grid=G")
      grid_dict, runs, timings = read_manifest(args.root)
      title = grid_dict.get("name", "sweep")
    root = args.root or grid.root
    print(report(root, runs, title=title, timings=timings))
    print(f"wrote {os.path.join(root, 'report.md')}", flush=True)
    return 0

  grid = load_grid(args.grid, grid_b)
  root = args.root or grid.root
  runs = expand(grid, root, run_b)
  if verb == "run":
    print(format_runs(runs), flush=True)
    timings = run_local(grid, runs, root)
    report(root, runs, title=grid.name, timings=timings)
    print(f"wrote {os.path.join(root, 'report.md')}", flush=True)
    return 0
  if args.list or not args.target:
    if launch_args or args.dry_run:
      p.error(f"{launch_args or ['--dry_run']} need --target=T (one of {', '.join(CLUSTER_TARGETS)})")
    print(format_runs(runs))
    return 0
  from flan_jax.sweep import submit  # pylint: disable=g-import-not-at-top  (launch's modules: not for --help)
  return submit.submit(grid, runs, root, args.target, launch_args, topology=args.topology,
                             max_in_flight=args.max_in_flight, poll_s=args.poll_s, dry_run=args.dry_run)



if __name__ == "__main__":
  sys.exit(main())
