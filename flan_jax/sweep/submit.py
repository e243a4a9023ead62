"""`flan-jax sweep --target=T` and `flan-jax sweep status`: submit a sweep's runs to a cluster,
then ask the cluster where each one is.

`submit` builds each run's `flan-jax launch` (the same steps a single launch prints with
--dry_run), keeps the steps that create and start the run and drops the one that follows it
to its end (`split_for_sweep`), builds one wheel for all runs (`share_wheel`), then submits
the runs, at most `max_in_flight` started and not ended at a time (`submit_all`). `status`
asks the cluster about each run (`probe_state`: squeue/sacct, `sky queue`, `xpk workload
list`, or the run's exit-code file on TPU worker 0) and reads its MODEL_DIR for the last
logged step and evaluation results. ROOT/sweep.json records what was submitted where.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable, Mapping, Sequence

from flan_jax.launch import launch_cli
from flan_jax.runtime import gin_utils
from flan_jax.sweep import grid as grid_lib, manifest, runner
from flan_jax.launch.steps import Launch

STATES = ("pending", "running", "succeeded", "failed", "unknown")


@dataclasses.dataclass(frozen=True)
class Submission:
  """One launch split for a sweep: `submit` creates and starts the run and returns;
  `cleanup` (from --cleanup) deletes its machines once it has ended."""
  submit: Launch
  cleanup: tuple


def split_for_sweep(launch: Launch) -> Submission:
  """The steps of `launch` that submit it, without the one that follows it to its end:
  tpu-vm drops the final log-streaming ssh (the run goes on detached on the workers), xpk
  its wait for completion, skypilot launches with --detach-run; an sbatch returns at once."""
  steps = [s for s in launch.steps if not s.always]
  cleanup = tuple(s for s in launch.steps if s.always)
  if launch.target in ("tpu-vm", "xpk"):
    steps = steps[:-1]
  elif launch.target == "skypilot":
    steps = [dataclasses.replace(s, argv=(*s.argv[:2], "--detach-run", *s.argv[2:]))
             if getattr(s, "argv", ())[:2] == ("sky", "launch") else s for s in steps]
  return Submission(dataclasses.replace(launch, steps=tuple(steps)), cleanup)


def share_wheel(submissions: Sequence[Submission], wheel_dir: str) -> tuple[object | None, list[Submission]]:
  """One `pip wheel` of this checkout for all runs: drops each run's wheel build and points its
  copies at `wheel_dir`. Returns (the one build step or None, the rewritten submissions)."""
  build, out = None, []
  for sub in submissions:
    dirs, steps = [], []
    for step in sub.submit.steps:
      argv = getattr(step, "argv", ())
      if argv[1:4] == ("-m", "pip", "wheel"):
        d = next(a.split("=", 1)[1] for a in argv if a.startswith("--wheel-dir="))
        dirs.append(d)
        if build is None:
          build = dataclasses.replace(step, argv=tuple(f"--wheel-dir={wheel_dir}" if a.startswith("--wheel-dir=")
                                                       else a for a in argv),
                                      note="build one wheel of this checkout for every run of the sweep")
        continue
      steps.append(step)
    for d in dirs:
      steps = [dataclasses.replace(s, argv=tuple(wheel_dir + a[len(d):] if a.startswith(d) else a for a in s.argv))
               if getattr(s, "argv", None) else s for s in steps]
    out.append(Submission(dataclasses.replace(sub.submit, steps=tuple(steps)), sub.cleanup))
  return build, out


def state_probe(target: str, name: str, args: argparse.Namespace) -> list[tuple[str, ...]]:
  """Commands that print where run `name` is, tried in order until one prints something."""
  if target == "slurm":
    return [("squeue", "--noheader", f"--name={name}", "--format=%T"),
            ("sacct", "--noheader", "-X", f"--name={name}", "--format=State")]
  if target == "skypilot":
    return [("sky", "queue", name)]
  loc = [f"--zone={args.zone}"] * bool(args.zone) + [f"--project={args.project}"] * bool(args.project)
  if target == "xpk":
    return [("xpk", "workload", "list", f"--cluster={args.cluster}", *loc, f"--filter-by-job={name}")]
  node = name if args.num_slices == 1 else f"{name}-0"
  run_dir = f"~/flan_jax_launch/{name}"
  script = (f"if [ -f {run_dir}/exit_code ]; then echo exit $(cat {run_dir}/exit_code); "
            f"elif [ -f {run_dir}/pid ] && kill -0 $(cat {run_dir}/pid) 2>/dev/null; then echo running; "
            f"else echo pending; fi")
  return [("gcloud", "compute", "tpus", "tpu-vm", "ssh", node, "--worker=0", *loc, "--command", script)]


_SLURM = {"PENDING": "pending", "CONFIGURING": "pending", "REQUEUED": "pending", "RUNNING": "running",
          "COMPLETING": "running", "COMPLETED": "succeeded"}


def parse_state(target: str, output: str) -> str:
  """A probe's output as one of STATES."""
  words = output.split()
  if not words:
    return "unknown"
  if target == "slurm":
    last = output.strip().splitlines()[-1].split()[0].rstrip("+")
    return _SLURM.get(last, "failed" if last in ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                                                  "PREEMPTED", "BOOT_FAIL", "DEADLINE") else "unknown")
  if target == "tpu-vm":
    if words[0] == "exit":
      return "succeeded" if words[-1] == "0" else "failed"
    return words[-1] if words[-1] in STATES else "unknown"
  upper = {w.upper().strip(",.") for w in words}
  if target == "skypilot":  # `sky queue` job statuses
    order = (("FAILED", "failed"), ("FAILED_SETUP", "failed"), ("CANCELLED", "failed"), ("RUNNING", "running"),
             ("SETTING_UP", "running"), ("PENDING", "pending"), ("INIT", "pending"), ("SUCCEEDED", "succeeded"))
  else:  # xpk: the workload's Kueue status
    order = (("FAILED", "failed"), ("EVICTED", "failed"), ("FINISHED", "succeeded"), ("RUNNING", "running"),
             ("ADMITTED", "running"), ("QUEUED", "pending"), ("PENDING", "pending"))
  return next((state for word, state in order if word in upper), "unknown")


def probe_state(target: str, name: str, args: argparse.Namespace, run=subprocess.run) -> tuple[str, str]:
  """(state, the probe's last output line) of run `name`; 'unknown' when the tool is missing or silent."""
  for argv in state_probe(target, name, args):
    try:
      out = run(list(argv), capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
      return "unknown", f"{argv[0]}: {e}"
    text = (out.stdout or "").strip()
    if text:
      return parse_state(target, text), text.splitlines()[-1].strip()
  return "unknown", "no record of this run"


def submit_all(submissions: Mapping[str, Submission], *, build=None, max_in_flight: int = 0, poll_s: float = 60,
               probe: Callable[[str], str], say=print, sleep=time.sleep,
               on_submit: Callable[[str], None] = lambda name: None,
               about: Mapping[str, str] | None = None) -> list[str]:
  """Runs the wheel build once, then each submission in order; with `max_in_flight` > 0 waits
  (polling `probe(name)` every `poll_s` s) until fewer runs than that are pending or running.
  A run seen ended has its cleanup steps run. With cleanup steps, waits for every run to end.
  Returns the names whose submission failed."""
  failed: list[str] = []
  if build is not None:
    say(f"# {build.note}")
    say(build.render())
    rc = build.run()
    if rc:
      say(f"# the wheel build failed with exit code {rc}; nothing was submitted")
      return list(submissions)
  in_flight: list[str] = []

  def reap() -> None:
    for name in list(in_flight):
      state = probe(name)
      if state in ("succeeded", "failed"):
        in_flight.remove(name)
        say(f"# {name}: {state}")
        for step in submissions[name].cleanup:
          say(step.render())
          step.run()

  total = len(submissions)
  for i, (name, sub) in enumerate(submissions.items(), 1):
    while max_in_flight and len(in_flight) >= max_in_flight:
      sleep(poll_s)
      reap()
    say(f"# [{i}/{total}] {name}: {(about or {}).get(name, 'submitting')}")
    if sub.submit.execute(echo=say):
      failed.append(name)
      continue
    in_flight.append(name)
    on_submit(name)
  while in_flight and any(submissions[n].cleanup for n in in_flight):
    sleep(poll_s)
    reap()
  return failed


# ---------------------------------------------------------------------------------------
# `flan-jax sweep --target=T` and `flan-jax sweep status`.


def _size_topologies(value: str | None, sizes: Sequence[str]) -> dict[str, str]:
  """--topology=T (every size) or SIZE=T,SIZE=T,... (per size) -> {size: topology}."""
  if not value:
    return {}
  if "=" not in value:
    return {m: value for m in sizes}
  out = {}
  for part in value.split(","):
    size, _, topology = (x.strip() for x in part.partition("="))
    if size not in sizes or not topology:
      raise ValueError(f"--topology={value}: {part!r} is not SIZE=TOPOLOGY with SIZE in SweepGrid.models "
                       f"({', '.join(sizes)})")
    out[size] = topology
  return out


def _recipe_topology(recipe: str) -> str | None:
  """The TOPOLOGY a recipe (and its includes) sets, read as text: no gin state is touched."""
  value = gin_utils.text_macros(gin_utils.resolve_gin_file(recipe)).get("TOPOLOGY")
  try:
    topology = ast.literal_eval(value) if value else None
  except (ValueError, SyntaxError):
    return None
  return topology if isinstance(topology, str) else None


def gpu_topologies_hint(grid: grid_lib.SweepGrid, gpu_type: str = "h100", gpus_per_node: int = 8) -> str:
  """A --topology value giving each size as many GPUs as its recipe's TPU slice has chips
  (rounded up to whole nodes)."""
  from flan_jax.planning import plan  # pylint: disable=g-import-not-at-top
  parts = []
  for size, recipe in grid.models.items():
    tpu = _recipe_topology(recipe)
    if tpu:
      chips = plan.parse_topology(tpu).chips
      parts.append(f"{size}={gpu_type}x{-(-chips // gpus_per_node) * gpus_per_node}")
  return ",".join(parts)


def submit(grid: grid_lib.SweepGrid, runs: Sequence[grid_lib.Run], root: str, target: str,
           launch_args: Sequence[str], *, topology: str | None = None, max_in_flight: int = 0,
           poll_s: float = 60, dry_run: bool = False, say=print) -> int:
  """`flan-jax sweep --target=T`: submits every run (see the module docstring); 1 if any failed."""
  parser = launch_cli._parser()  # pylint: disable=protected-access
  base = parser.parse_args(["--target", target, *launch_args])
  launch_cli._check_flags(base, parser)  # pylint: disable=protected-access
  if max_in_flight < 0:
    raise ValueError(f"--max_in_flight={max_in_flight}; give N >= 1, or 0 for no bound")
  sizes = _size_topologies(topology, list(grid.models))
  if target in ("slurm", "skypilot") and not base.num_nodes:
    tpu_sized = [m for m, r in grid.models.items() if m not in sizes and _recipe_topology(r)
                 and not _recipe_topology(r).startswith(("h100", "h200", "a100"))]
    if tpu_sized:
      raise ValueError(
          f"--target={target} runs on GPU clusters, but the recipes of {', '.join(tpu_sized)} name TPU slices "
          f"(their TOPOLOGY macro). Give one GPU cluster for every run (--topology={base.gpu_type}x64) or one per "
          f"size, e.g. as many GPUs as each recipe's slice has chips:\n  --topology="
          f"{gpu_topologies_hint(grid, base.gpu_type, base.gpus_per_node)}")
  submissions, about, failed = {}, {}, []
  for r in runs:
    about[r.name] = f"{r.params:,} parameters, {r.flops:.2e} training FLOPs"
    args = argparse.Namespace(**{**vars(base), "name": r.name, "topology": sizes.get(r.model, base.topology)})
    try:
      launch = launch_cli.make_launch([r.recipe], list(r.bindings), args)
    except (ValueError, FileNotFoundError) as e:  # e.g. the recipe does not fit: say so, submit the others
      print(f"flan-jax sweep: {r.name}: {e}", file=sys.stderr, flush=True)
      failed.append(r.name)
      continue
    submissions[r.name] = split_for_sweep(launch)
  wheel_dir = os.path.join(tempfile.gettempdir(), f"flan_jax_sweep_{grid_lib.slug(grid.name)}")
  build, subs = share_wheel(list(submissions.values()), wheel_dir)
  submissions = dict(zip(submissions, subs))
  bound = f"at most {max_in_flight} in flight" if max_in_flight else "all submitted at once"
  say(f"# sweep {grid.name}: {len(runs)} runs on {target}, {bound}; MODEL_DIRs under {root}")

  if dry_run:
    if build is not None:
      say(f"\n# {build.note}\n{build.render()}")
    for i, r in enumerate(runs, 1):
      say(f"\n# [{i}/{len(runs)}] {r.name}: {about[r.name]}")
      if r.name in submissions:
        sub = submissions[r.name]
        say(sub.submit.render())
        if sub.cleanup:
          say("# once it has ended (--cleanup; the sweep waits for it):")
          say("\n".join(step.render() for step in sub.cleanup))
    say(f"\n# then: flan-jax sweep status --root={root}")
  else:
    record = {"target": target, "launch_args": ["--target", target, *launch_args], "runs": {}}
    manifest.write_manifest(root, grid, runs, submitted=record)

    def on_submit(name: str) -> None:
      record["runs"][name] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
      manifest.write_manifest(root, grid, runs, submitted=record)

    failed += submit_all(
        {n: submissions[n] for n in submissions}, build=build, max_in_flight=max_in_flight, poll_s=poll_s,
        probe=lambda name: probe_state(target, name, base)[0], say=say, on_submit=on_submit,
        about=about)
    say(f"# submitted {len(record['runs'])} of {len(runs)} runs; where they are: flan-jax sweep status --root={root}")
  if failed:
    print(f"flan-jax sweep: {len(failed)} launch(es) failed: {', '.join(failed)}", file=sys.stderr, flush=True)
    return 1
  return 0


def _last_step(model_dir: str) -> int | None:
  text = manifest.read_text(model_dir.rstrip("/") + "/train_metrics.jsonl")
  lines = [ln for ln in (text or "").splitlines() if ln.strip()]
  try:
    return int(json.loads(lines[-1])["step"]) if lines else None
  except (ValueError, KeyError):
    return None


def _has_results(model_dir: str) -> bool:
  pattern = model_dir.rstrip("/") + "/eval/results_*.json"
  if "://" in model_dir:
    import tensorflow as tf
    return bool(tf.io.gfile.glob(pattern))
  return runner.latest_results(model_dir) is not None


def status(root: str, *, run=subprocess.run) -> str:
  """`flan-jax sweep status`: one line per run with its cluster state, last step and eval results."""
  body = manifest.manifest_body(root)
  runs = [grid_lib.Run(**{**r, "bindings": tuple(r["bindings"])}) for r in body["runs"]]
  submitted = body.get("submitted") or {}
  args = None
  if submitted:
      args = launch_cli._parser().parse_args(submitted["launch_args"])  # pylint: disable=protected-access
  where = f"on {submitted['target']}" if submitted else "trained here (`sweep run`)"
  lines = [f"# sweep {body['grid'].get('name', 'sweep')}: {len(runs)} runs {where}; {root}",
           f"{'run':<28} {'state':<13} {'step':>15} {'eval':<5} detail"]
  counts: dict[str, int] = {}
  for r in runs:
    if not submitted:
      state, detail = ("evaluated" if _has_results(r.model_dir) else "-"), ""
    elif r.name not in submitted["runs"]:
      state, detail = "not submitted", ""
    else:
      state, detail = probe_state(submitted["target"], r.name, args, run=run)
      detail = f"submitted {submitted['runs'][r.name]}; {detail}"
    counts[state] = counts.get(state, 0) + 1
    step = _last_step(r.model_dir)
    progress = f"{step if step is not None else '-'}/{r.train_steps}"
    lines.append(f"{r.name:<28} {state:<13} {progress:>15} {'yes' if _has_results(r.model_dir) else 'no':<5} "
                 f"{detail[:80]}")
  lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
  return "\n".join(lines)
