"""Submitting a sweep's runs to a cluster, and asking the cluster where each one is.

`flan-jax sweep --target=T` builds each run's `flan-jax launch` (the same steps a single
launch prints with --dry_run), keeps the steps that create and start the run and drops
the one that follows it to its end (`split_for_sweep`), builds one wheel for all runs
(`share_wheel`), then submits the runs, at most `max_in_flight` started and not ended at
a time (`submit_all`). `flan-jax sweep status` asks the cluster about each run
(`probe_state`: squeue/sacct, `sky queue`, `xpk workload list`, or the run's exit-code
file on TPU worker 0) and reads its MODEL_DIR for the last logged step.
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import time
from typing import Callable, Mapping, Sequence

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
