"""`flan-jax sweep`: the paper's scaling study (model size x number of tasks x CoT) as one gin file.

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
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from typing import Mapping, Sequence

import gin

from flan_jax import gin_utils

MANIFEST = "sweep.json"
CLUSTER_TARGETS = ("tpu-vm", "xpk", "slurm", "skypilot")  # `flan-jax sweep --target=T` (launch/sweep.py)
NORM_AVG = "Norm. avg"
LOGLIK = "answer log-lik. (nats/token)"


@gin.configurable
@dataclasses.dataclass(frozen=True)
class SweepGrid:
  """One scaling study. `mixture` is formatted with n (task count) and cot ('' with CoT,
  '_no_cot' without); `skip` names cells that do not exist, as 'N/no_cot' or 'N/cot'."""
  name: str = "sweep"
  models: Mapping[str, str] = dataclasses.field(default_factory=dict)   # size label -> recipe gin file
  model_overrides: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)  # label -> ['K = V']
  task_counts: Sequence[int] = ()
  cot: Sequence[bool] = (True, False)
  mixture: str = "flan_scaling_{n}_tasks{cot}"
  skip: Sequence[str] = ()
  overrides: Sequence[str] = ()            # 'K = V' bindings of every run
  eval_recipe: str = "gin/recipes/quickstart_eval.gin"
  eval_overrides: Sequence[str] = ()       # 'K = V' bindings of every evaluation
  root: str = "/tmp/flan_jax_sweep"


@dataclasses.dataclass(frozen=True)
class Run:
  name: str
  model: str
  num_tasks: int
  cot: bool
  recipe: str
  bindings: tuple[str, ...]   # 'K = V', after the recipe
  model_dir: str
  params: int
  train_steps: int
  flops: float                # training FLOPs of the whole run

  def gin_args(self) -> list[str]:
    return [f"--gin_file={self.recipe}"] + [_flag(b) for b in self.bindings]

  def cell(self) -> str:
    return f"{self.num_tasks}/{'cot' if self.cot else 'no_cot'}"


def _flag(binding: str) -> str:
  key, value = binding.split("=", 1)
  return f"--gin.{key.strip()}={value.strip()}"


def _slug(text: str) -> str:
  return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# ----------------------------------------------------------------------------------------
# The grid.


def load_grid(path: str, bindings: Sequence[str] = ()) -> SweepGrid:
  """Parses a sweep gin file (+ `SweepGrid.*` bindings) into a SweepGrid; leaves gin cleared."""
  gin.clear_config()
  try:
    gin_utils.parse([path], bindings, finalize=False)
    grid = SweepGrid()
  finally:
    gin.clear_config()
  if not grid.models or not grid.task_counts or not grid.cot:
    raise ValueError(f"{path}: SweepGrid.models, SweepGrid.task_counts and SweepGrid.cot must be non-empty")
  unknown = set(grid.model_overrides) - set(grid.models)
  if unknown:
    raise ValueError(f"{path}: SweepGrid.model_overrides names sizes {sorted(unknown)} that are not in "
                     f"SweepGrid.models ({', '.join(grid.models)})")
  return grid


def expand(grid: SweepGrid, root: str | None = None, extra: Sequence[str] = ()) -> list[Run]:
  """Every (size, task count, CoT) cell of the grid as a Run, with its FLOPs; leaves gin cleared."""
  from flan_jax import flops, plan  # pylint: disable=g-import-not-at-top  (JAX: not for --help)
  root = root or grid.root
  runs = []
  for model, recipe in grid.models.items():
    for n in grid.task_counts:
      for cot in grid.cot:
        if f"{n}/{'cot' if cot else 'no_cot'}" in grid.skip:
          continue
        name = f"{_slug(model)}-{n}-{'cot' if cot else 'nocot'}"
        mixture = grid.mixture.format(n=n, cot="" if cot else "_no_cot")
        model_dir = root.rstrip("/") + "/" + name
        bindings = (tuple(grid.overrides) + tuple(grid.model_overrides.get(model, ())) + tuple(extra)
                    + (f"MIXTURE_OR_TASK_NAME = {mixture!r}", f"MODEL_DIR = {model_dir!r}"))
        recipe_numbers = plan.recipe_from_gin([recipe], bindings)
        steps = int(recipe_numbers.train_steps or 0)
        step_flops = flops.train_step_flops(recipe_numbers.model_config, recipe_numbers.batch_size,
                                            recipe_numbers.input_length, recipe_numbers.target_length)
        runs.append(Run(name, model, n, cot, recipe, bindings, model_dir,
                        flops.param_count(recipe_numbers.model_config), steps, step_flops * steps))
  return runs


def format_runs(runs: Sequence[Run]) -> str:
  lines = [f"{'run':<28} {'recipe':<34} {'params':>9} {'steps':>7} {'FLOPs':>9}  mixture"]
  for r in runs:
    mixture = next(b.split("=", 1)[1].strip().strip("'") for b in r.bindings if b.startswith("MIXTURE_OR_TASK_NAME"))
    lines.append(f"{r.name:<28} {r.recipe:<34} {_human(r.params):>9} {r.train_steps:>7} "
                 f"{r.flops:>9.2e}  {mixture}")
  total = sum(r.flops for r in runs)
  lines.append(f"{len(runs)} runs, {total:.2e} training FLOPs in all")
  return "\n".join(lines)


def _human(n: float) -> str:
  for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
    if n >= scale:
      return f"{n / scale:.3g}{unit}"
  return str(int(n))


# ----------------------------------------------------------------------------------------
# The manifest (ROOT/sweep.json): what `report` reads.


def _write_text(path: str, text: str) -> None:
  if "://" in path:
    import tensorflow as tf
    with tf.io.gfile.GFile(path, "w") as f:
      f.write(text)
    return
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "w") as f:
    f.write(text)


def _read_text(path: str) -> str | None:
  """The file's text, or None if it does not exist (gs:// paths through tf.io.gfile)."""
  if "://" in path:
    import tensorflow as tf
    if not tf.io.gfile.exists(path):
      return None
    with tf.io.gfile.GFile(path) as f:
      return f.read()
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return f.read()


def write_manifest(root: str, grid: SweepGrid, runs: Sequence[Run], timings: Mapping | None = None,
                   submitted: Mapping | None = None) -> str:
  """ROOT/sweep.json; `submitted`: {'target', 'launch_args', 'runs': {name: time}} of a cluster sweep."""
  path = root.rstrip("/") + "/" + MANIFEST
  body = {"grid": dataclasses.asdict(grid), "runs": [dataclasses.asdict(r) for r in runs],
          "timings": dict(timings or {})}
  if submitted:
    body["submitted"] = dict(submitted)
  _write_text(path, json.dumps(body, indent=1, default=list))
  return path


def _manifest_body(root: str) -> dict:
  path = root.rstrip("/") + "/" + MANIFEST
  text = _read_text(path)
  if text is None:
    raise FileNotFoundError(f"{path} not found: give --grid=G (the sweep's gin file) or run "
                            f"`flan-jax sweep run --grid=G --root={root}` first")
  return json.loads(text)


def read_manifest(root: str) -> tuple[dict, list[Run], dict]:
  body = _manifest_body(root)
  runs = [Run(**{**r, "bindings": tuple(r["bindings"])}) for r in body["runs"]]
  return body["grid"], runs, body.get("timings", {})


# ----------------------------------------------------------------------------------------
# Running locally.


def _eval_args(grid: SweepGrid, run: Run) -> list[str]:
  return ([f"--gin_file={grid.eval_recipe}", f"--gin.CHECKPOINT_PATH={run.model_dir!r}"]
          + [_flag(b) for b in grid.eval_overrides])


def latest_results(model_dir: str) -> dict | None:
  """The eval results JSON of the highest step under MODEL_DIR/eval, or None."""
  eval_dir = os.path.join(model_dir, "eval")
  best, best_step = None, -1
  if os.path.isdir(eval_dir):
    for f in os.listdir(eval_dir):
      m = re.fullmatch(r"results_(\d+|init)\.json", f)
      if m:
        step = int(m.group(1)) if m.group(1).isdigit() else 0
        if step > best_step:
          best, best_step = os.path.join(eval_dir, f), step
  if best is None:
    return None
  with open(best) as f:
    return json.load(f)


def _run_one(train_args: Sequence[str], eval_args: Sequence[str]) -> int:
  """`flan-jax train` then `flan-jax eval` in this process (one JAX/TF start-up per run);
  prints the seconds each took on the last line."""
  from flan_jax import eval as eval_lib
  from flan_jax import train as train_lib
  t0 = time.perf_counter()
  train_lib.main(list(train_args))
  gin.clear_config()
  t1 = time.perf_counter()
  eval_lib.main(list(eval_args))
  print(f"SWEEP_TIMES {t1 - t0:.1f} {time.perf_counter() - t1:.1f}", flush=True)
  return 0


def _subprocess(run: Run, eval_args: Sequence[str], log_path: str) -> tuple[float, float]:
  """Trains and evaluates one run in a fresh Python process; (train, eval) seconds."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  args = [sys.executable, "-m", "flan_jax.sweep", "_one", *run.gin_args(), "--", *eval_args]
  with open(log_path, "w") as log:
    rc = subprocess.call(args, stdout=log, stderr=subprocess.STDOUT, env=env)
  with open(log_path) as f:
    lines = f.readlines()
  if rc:
    raise RuntimeError(f"run {run.name} failed (exit {rc}); log {log_path}:\n{''.join(lines[-25:])}")
  times = [ln.split()[1:] for ln in lines if ln.startswith("SWEEP_TIMES")][-1]
  return float(times[0]), float(times[1])


def run_local(grid: SweepGrid, runs: Sequence[Run], root: str, *, say=print) -> dict:
  """Trains then evaluates each run in turn (skipping runs that already have results)."""
  logs = os.path.join(root, "logs")
  os.makedirs(logs, exist_ok=True)
  timings = {}
  if os.path.isfile(os.path.join(root, MANIFEST)):  # a resumed sweep keeps the earlier runs' timings
    timings = read_manifest(root)[2]
  write_manifest(root, grid, runs, timings)
  for i, r in enumerate(runs, 1):
    if latest_results(r.model_dir) is not None:
      say(f"[{i}/{len(runs)}] {r.name}: has eval results, skipped")
      continue
    t_train, t_eval = _subprocess(r, _eval_args(grid, r), os.path.join(logs, f"{r.name}.log"))
    timings[r.name] = {"train_s": round(t_train, 1), "eval_s": round(t_eval, 1)}
    say(f"[{i}/{len(runs)}] {r.name}: trained in {t_train:.0f}s, evaluated in {t_eval:.0f}s")
    write_manifest(root, grid, runs, timings)
  return timings


# ----------------------------------------------------------------------------------------
# The report.


def collect(runs: Sequence[Run]) -> dict[str, dict[str, float]]:
  """run name -> {benchmark column: score, NORM_AVG: normalised average} (runs without results left out)."""
  scores = {}
  for r in runs:
    res = latest_results(r.model_dir)
    if res is None:
      continue
    s = {c: float(v) for c, v in res["columns"].items()}
    if res.get("normalized_average") is not None:
      s[NORM_AVG] = float(res["normalized_average"])
    # A smooth signal next to each column's score: the mean per-token log-likelihood of
    # the gold answers (teacher forced), which moves long before small models' exact
    # answers do.
    loglik: dict[str, list[float]] = {}
    for t in res.get("tasks", {}).values():
      if "target_logprob" in t.get("metrics", {}):
        loglik.setdefault(t["column"], []).append(float(t["metrics"]["target_logprob"]))
    for c, values in loglik.items():
      s[f"{c} {LOGLIK}"] = sum(values) / len(values)
    scores[r.name] = s
  return scores


def _layout(runs: Sequence[Run]):
  models = list(dict.fromkeys(r.model for r in runs))
  counts = sorted({r.num_tasks for r in runs})
  cots = [c for c in (True, False) if any(r.cot == c for r in runs)]
  by_cell = {(r.model, r.num_tasks, r.cot): r for r in runs}
  return models, counts, cots, by_cell


def _table(runs: Sequence[Run], value) -> str:
  models, counts, cots, by_cell = _layout(runs)
  heads = [f"{n} tasks {'+CoT' if c else 'no CoT'}" for n in counts for c in cots]
  lines = ["| Model | Params | " + " | ".join(heads) + " |", "|" + " --- |" * (len(heads) + 2)]
  for m in models:
    params = next(r.params for r in runs if r.model == m)
    cells = []
    for n in counts:
      for c in cots:
        r = by_cell.get((m, n, c))
        cells.append("n/a" if r is None else value(r))
    lines.append(f"| {m} | {_human(params)} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _metrics(scores: Mapping[str, Mapping[str, float]]) -> list[str]:
  cols = []
  for s in scores.values():
    cols += [c for c in s if c not in cols and c != NORM_AVG]
  return ([NORM_AVG] if any(NORM_AVG in s for s in scores.values()) else []) + cols


def plot(runs: Sequence[Run], scores: Mapping, metric: str, out_dir: str) -> list[str]:
  """Two PNGs for one metric: score vs number of tasks (a line per model size; with and
  without CoT side by side) and score vs model size at the largest task count (with, without CoT)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  models, counts, cots, by_cell = _layout(runs)
  get = lambda m, n, c: scores.get(by_cell[(m, n, c)].name, {}).get(metric) if (m, n, c) in by_cell else None
  log_x = counts[0] > 0 and counts[-1] / counts[0] >= 10
  paths = []

  fig, axes = plt.subplots(1, len(cots), figsize=(5 * len(cots), 4), squeeze=False, sharey=True)
  for ax, c in zip(axes[0], cots):
    for m in models:
      pts = [(n, get(m, n, c)) for n in counts if get(m, n, c) is not None]
      if pts:
        ax.plot(*zip(*pts), marker="o", label=m)
    ax.set_title(f"fine-tuned {'with' if c else 'without'} CoT")
    ax.set_xlabel("number of fine-tuning tasks")
    if log_x:
      ax.set_xscale("log")
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  axes[0][0].set_ylabel(metric)
  fig.tight_layout()
  paths.append(os.path.join(out_dir, f"tasks_{_slug(metric)}.png"))
  fig.savefig(paths[-1], dpi=100)
  plt.close(fig)

  n = counts[-1]
  fig, ax = plt.subplots(figsize=(5, 4))
  params = {m: next(r.params for r in runs if r.model == m) for m in models}
  for c in cots:
    pts = [(params[m], get(m, n, c)) for m in models if get(m, n, c) is not None]
    if pts:
      ax.plot(*zip(*sorted(pts)), marker="o", label=f"{'with' if c else 'without'} CoT")
  ax.set_xscale("log")
  ax.set_xlabel("model parameters")
  ax.set_ylabel(metric)
  ax.set_title(f"{metric} at {n} tasks")
  for m in models:
    ax.annotate(m, (params[m], ax.get_ylim()[0]), fontsize=7, rotation=90, va="bottom")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  paths.append(os.path.join(out_dir, f"size_{_slug(metric)}.png"))
  fig.savefig(paths[-1], dpi=100)
  plt.close(fig)
  return paths


def report(root: str, runs: Sequence[Run], *, title: str = "sweep", timings: Mapping | None = None) -> str:
  """Writes ROOT/report.md and ROOT/*.png; returns the Markdown."""
  scores = collect(runs)
  metrics = _metrics(scores)
  missing = [r.name for r in runs if r.name not in scores]
  out = [f"# Scaling sweep `{title}`", "",
         f"{len(scores)} of {len(runs)} runs have evaluation results"
         + (f"; missing: {', '.join(missing)}" if missing else "") + ".",
         "Rows: model size. Columns: number of fine-tuning tasks, with (+CoT) or without the CoT data.", ""]
  plots = []
  for metric in metrics:
    digits = 2 if LOGLIK in metric else 1
    cell = lambda r, metric=metric, digits=digits: (f"{scores[r.name][metric]:.{digits}f}"
                                     if metric in scores.get(r.name, {}) else "-")
    out += [f"## {metric}", "", _table(runs, cell), ""]
    if scores:
      for p in plot(runs, scores, metric, root):
        plots.append(p)
        out.append(f"![{metric}]({os.path.basename(p)})")
      out.append("")
  out += ["## Training FLOPs", "", _table(runs, lambda r: f"{r.flops:.2e}"), ""]
  if timings:
    out += ["## Wall time (train + eval, s)", "",
            _table(runs, lambda r: (f"{timings[r.name]['train_s']:.0f} + {timings[r.name]['eval_s']:.0f}"
                                    if r.name in timings else "-")), ""]
  text = "\n".join(out) + "\n"
  _write_text(os.path.join(root, "report.md"), text)
  return text


# ----------------------------------------------------------------------------------------
# Command line.


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
    return _run_one(argv[1:cut], argv[cut + 1:])
  verb = argv.pop(0) if argv and argv[0] in VERBS else None
  grid_b, run_b, rest = _split(argv)
  p = _parser(verb)
  if verb is None:
    args, launch_args = p.parse_known_args(rest)
  else:
    args, launch_args = p.parse_args(rest), []

  if verb == "status":
    from flan_jax.launch import sweep as launch_sweep  # pylint: disable=g-import-not-at-top
    print(launch_sweep.status(args.root), flush=True)
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
  from flan_jax.launch import sweep as launch_sweep  # pylint: disable=g-import-not-at-top
  return launch_sweep.submit(grid, runs, root, args.target, launch_args, topology=args.topology,
                             max_in_flight=args.max_in_flight, poll_s=args.poll_s, dry_run=args.dry_run)


if __name__ == "__main__":
  sys.exit(main())
