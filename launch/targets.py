"""The remote targets: Cloud TPU VMs (gcloud), GKE via xpk, SLURM, SkyPilot.

Each `build_*` returns a `steps.Launch`: the commands (and files) that create the
machines, install flan_jax, start `flan-jax train` on every host with what
`flan_jax/runtime/distributed.py` reads, follow the run, and optionally clean up.
"""
from __future__ import annotations

import os
import sys
import tempfile

from flan_jax.launch.job import Job, source_root
from flan_jax.launch.steps import Command, Launch, WaitFor, WriteFile, heredoc_delimiter, quote, shell_join
from flan_jax.launch.slices import GpuCluster, TpuSlice

COORDINATOR_PORT = 8476  # jax.distributed's customary coordinator port
TRAIN_ENV = {"PYTHONUNBUFFERED": "1"}
# The Cloud TPU VM images (tpu-ubuntu2204-base, v2-alpha-tpuv5*, v2-alpha-tpuv6e) are Ubuntu 22.04, whose
# python3 is 3.10; jax has required newer ones since 0.7. Workers get a venv of a Python the pinned jax
# accepts, made by uv (which fetches a standalone CPython when the image lacks that version).
IMAGE_PYTHON = "3.10"
VENV = "flan_jax_venv"  # under the worker's home directory
PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")


def python_for_jax(jax_version: str) -> tuple[str, str]:
  """(X.Y, why): the oldest Python that `jax==jax_version` accepts, from its Requires-Python
  when that version is the one installed here; else this machine's Python."""
  from importlib import metadata
  from packaging.specifiers import SpecifierSet
  try:
    meta = metadata.metadata("jax")
  except metadata.PackageNotFoundError:
    meta = None
  here = f"{sys.version_info.major}.{sys.version_info.minor}"
  if meta is None or meta["Version"] != jax_version or not meta.get("Requires-Python"):
    return here, f"this machine's Python; jax {jax_version}'s requirement is not known here"
  spec = SpecifierSet(meta["Requires-Python"])
  accepted = [v for v in PYTHONS if spec.contains(f"{v}.0")]
  if not accepted:
    return here, f"jax {jax_version} requires Python {spec}; this machine's Python"
  return accepted[0], f"jax {jax_version} requires Python {spec}"


def venv_setup(jax_version: str, home: str = "~") -> tuple[str, str]:
  """(shell line making {home}/{VENV} with a Python jax_version accepts, the dry run's note on it)."""
  version, why = python_for_jax(jax_version)
  line = (f"python3 -m pip install --quiet --user uv && ~/.local/bin/uv venv --quiet --seed --allow-existing "
          f"--python {version} {home}/{VENV}")
  return line, f"Python {version} in {home}/{VENV} ({why}; the image's python3 is {IMAGE_PYTHON})"


def _wheel_name() -> str:
  from importlib import metadata
  return f"flan_jax-{metadata.version('flan_jax')}-py3-none-any.whl"


def _require_source(what: str) -> str:
  root = source_root()
  if root is None:
    raise ValueError(f"{what} needs flan_jax as a source checkout (a directory with setup.py); this one is "
                     f"installed from a wheel: pass --install=SPEC (e.g. git+https://github.com/ORG/flan_jax@COMMIT)")
  return root


# ---------------------------------------------------------------------------------------
# Cloud TPU VMs.


def build_tpu_vm(job: Job, tpu: TpuSlice, *, num_slices: int = 1, zone: str | None = None,
                 project: str | None = None, queued: bool = False, spot: bool = False,
                 runtime_version: str | None = None, install: str = "wheel", jax_version: str,
                 cleanup: bool = False) -> Launch:
  """Create (or reuse) the slice, install flan_jax on every worker, train on all, follow worker 0."""
  name, loc = job.name, [f"--zone={zone}"] * bool(zone) + [f"--project={project}"] * bool(project)
  queued = queued or num_slices > 1  # multislice needs queued resources
  runtime = runtime_version or tpu.runtime_version
  workers = tpu.workers * num_slices
  gcloud = ["gcloud", "compute", "tpus"]
  steps: list = []
  shape = f"{num_slices} x {tpu.accelerator_type}" if num_slices > 1 else tpu.accelerator_type
  hosts = f"{tpu.workers} TPU VM worker(s) of {tpu.chips_per_worker} chips" + (" per slice" if num_slices > 1 else "")
  if queued:
    nodes = [name] if num_slices == 1 else [f"{name}-{i}" for i in range(num_slices)]
    placement = [f"--node-id={name}"] if num_slices == 1 else [f"--node-count={num_slices}", f"--node-prefix={name}"]
    steps.append(Command(
        tuple(gcloud + ["queued-resources", "create", name, f"--accelerator-type={tpu.accelerator_type}",
                        f"--runtime-version={runtime}", *placement, *loc] + ["--spot"] * spot),
        note=f"request {shape} ({hosts}) as queued resource {name}, unless it exists",
        unless=tuple(gcloud + ["queued-resources", "describe", name, *loc])))
    steps.append(WaitFor(tuple(gcloud + ["queued-resources", "describe", name, "--format=value(state.state)", *loc]),
                         until="ACTIVE", fail_on=("FAILED", "SUSPENDED"), note="wait until the slice is ACTIVE"))
    delete = gcloud + ["queued-resources", "delete", name, "--force", "--quiet", *loc]
  else:
    nodes = [name]
    steps.append(Command(
        tuple(gcloud + ["tpu-vm", "create", name, f"--accelerator-type={tpu.accelerator_type}",
                        f"--version={runtime}", *loc] + ["--spot"] * spot),
        note=f"create TPU VM slice {name}: {shape}, {hosts}, unless it exists",
        unless=tuple(gcloud + ["tpu-vm", "describe", name, *loc])))
    delete = gcloud + ["tpu-vm", "delete", name, "--quiet", *loc]

  def ssh(node: str, worker: str, command: str, note: str) -> Command:
    return Command(tuple(gcloud + ["tpu-vm", "ssh", node, f"--worker={worker}", *loc, "--command", command]),
                   note=note)

  # Install: a wheel of this checkout (default) or any pip requirement.
  to_copy = list(job.shipped_files)
  if install == "wheel":
    root = _require_source("--install=wheel")
    dist = os.path.join(tempfile.gettempdir(), f"flan_jax_launch_{name}")
    wheel = _wheel_name()
    steps.append(Command((sys.executable, "-m", "pip", "wheel", "--no-deps", f"--wheel-dir={dist}", root),
                         note="build a wheel of this checkout (recipes and tasks ship inside it)"))
    to_copy.insert(0, os.path.join(dist, wheel))
    requirement = f"~/{wheel}"
  else:
    requirement = quote(install)
  for node in nodes:
    for path in to_copy:
      steps.append(Command(tuple(gcloud + ["tpu-vm", "scp", path, f"{node}:~/", "--worker=all", *loc]),
                           note=f"copy {os.path.basename(path)} to every worker of {node}"))
  jax_req = quote(f"jax[tpu]=={jax_version}")
  venv, python_note = venv_setup(jax_version)
  py = f"~/{VENV}/bin/python"
  pip = f"{venv} && {py} -m pip install --quiet --upgrade {requirement} {jax_req}"
  if install == "wheel":  # same version number, new code: reinstall our package alone
    pip += f" && {py} -m pip install --quiet --force-reinstall --no-deps {requirement}"
  for node in nodes:
    steps.append(ssh(node, "all", pip, f"install flan_jax and jax[tpu]=={jax_version} on every worker of {node}: "
                                       f"{python_note}"))

  # Train: detached on every worker (an ssh drop does not stop it), then follow worker 0.
  run_dir = f"~/flan_jax_launch/{name}"
  env = {"FLAN_JAX_DISTRIBUTED": "1", **TRAIN_ENV, **job.env}  # jax.distributed.initialize() discovers the pod
  # run.sh starts in the home directory, where the venv is.
  train = shell_join(job.train_argv(python=f"{VENV}/bin/python",
                                    file_names={p: os.path.basename(p) for p in job.shipped_files}), env, wrap=False)
  body = [f"{train} > {run_dir}/train.log 2>&1", f"echo $? > {run_dir}/exit_code"]
  end = heredoc_delimiter("\n".join(body))
  start = "\n".join([
      f"mkdir -p {run_dir} && cd ~",
      f"if [ -f {run_dir}/pid ]; then kill -- -$(cat {run_dir}/pid) 2>/dev/null; sleep 5; fi",
      f"rm -f {run_dir}/exit_code",
      f"cat > {run_dir}/run.sh <<\\{end}",  # quoted delimiter: $? is run.sh's, not expanded now
      *body,
      end,
      f"setsid nohup bash {run_dir}/run.sh > /dev/null 2>&1 < /dev/null & echo $! > {run_dir}/pid"])
  for node in nodes:
    steps.append(ssh(node, "all", start,
                     f"start training on all {tpu.workers} workers of {node} ({workers} JAX processes in all; "
                     f"FLAN_JAX_DISTRIBUTED=1), replacing a run this launcher started there before"))
  follow = (f"tail -n +1 -F {run_dir}/train.log & t=$!; "
            f"while [ ! -f {run_dir}/exit_code ]; do sleep 10; done; sleep 2; kill $t; exit $(cat {run_dir}/exit_code)")
  steps.append(ssh(nodes[0], "0", follow, "stream worker 0's log until training ends; exit with its exit code"))
  if cleanup:
    steps.append(Command(tuple(delete), note=f"delete {name} (--cleanup)", always=True))
  summary = (f"tpu-vm: {job.name}, {shape} = {tpu.topology.chips * num_slices} chips on {workers} "
             f"worker{'s' * (workers != 1)} "
             f"({tpu.chips_per_worker} chips each), runtime {runtime}",
             f"MODEL_DIR {job.model_dir}")
  return Launch("tpu-vm", summary, tuple(steps))


# ---------------------------------------------------------------------------------------
# GKE through xpk.


def build_xpk(job: Job, tpu: TpuSlice, *, cluster: str, num_slices: int = 1, zone: str | None = None,
              project: str | None = None, docker_image: str | None = None, base_docker_image: str = "python:3.11",
              jax_version: str, cleanup: bool = False) -> Launch:
  """`xpk workload create` on an existing GKE cluster; then wait for it (and delete it with --cleanup)."""
  if not cluster:
    raise ValueError("--target=xpk needs --cluster=NAME (a GKE cluster made with `xpk cluster create`)")
  loc = [f"--cluster={cluster}"] + [f"--project={project}"] * bool(project) + [f"--zone={zone}"] * bool(zone)
  file_names = {}
  if docker_image:
    image = [f"--docker-image={docker_image}"]
    prefix = ""
    if job.shipped_files:
      raise ValueError(f"gin files {job.shipped_files} are not flan_jax's shipped recipes; with --docker_image "
                       f"bake them into the image and name them by their path there")
  else:  # xpk layers the checkout (--script-dir) onto a base image; install it when the container starts
    root = _require_source("--target=xpk without --docker_image")
    image = [f"--base-docker-image={base_docker_image}", f"--script-dir={root}"]
    prefix = f"python3 -m pip install --quiet . {quote(f'jax[tpu]=={jax_version}')} && "
    for path in job.shipped_files:
      if os.path.commonpath([path, root]) != root:
        raise ValueError(f"gin file {path} is outside {root}, which xpk copies into the image; move it inside")
      file_names[path] = os.path.relpath(path, root)
  env = {"FLAN_JAX_DISTRIBUTED": "1", **TRAIN_ENV, **job.env}
  command = prefix + shell_join(job.train_argv(file_names=file_names), env, wrap=False)
  create = ["xpk", "workload", "create", f"--workload={job.name}", *loc, f"--tpu-type={tpu.accelerator_type}",
            f"--num-slices={num_slices}", *image, "--command", command]
  steps = [Command(tuple(create), note=f"submit {job.name}: {num_slices} x {tpu.accelerator_type} "
                                       f"({tpu.workers * num_slices} pods/JAX processes, FLAN_JAX_DISTRIBUTED=1)"),
           Command(("xpk", "workload", "list", *loc, f"--wait-for-job-completion={job.name}"),
                   note="wait for the workload to finish (logs: the link xpk printed above)")]
  if cleanup:
    steps.append(Command(("xpk", "workload", "delete", f"--workload={job.name}", *loc),
                         note=f"delete workload {job.name} (--cleanup)", always=True))
  summary = (f"xpk: {job.name} on GKE cluster {cluster}, {num_slices} x {tpu.accelerator_type} = "
             f"{tpu.topology.chips * num_slices} chips, {tpu.workers * num_slices} workers",
             f"MODEL_DIR {job.model_dir}")
  return Launch("xpk", summary, tuple(steps))


# ---------------------------------------------------------------------------------------
# GPU clusters: one process per node, all of the node's GPUs in it.


def _distributed_exports(address: str, num: str, process_id: str | None = None, *, gpus_per_node: int,
                         job: Job) -> list[str]:
  """Shell exports of what flan_jax/runtime/distributed.py reads (and unbuffered logs, the data directory).
  JAX_LOCAL_DEVICE_IDS lists all of the node's GPUs: without it jax's SLURM detection gives the
  one process of a node only GPU SLURM_LOCALID (= 0)."""
  return [f'export JAX_COORDINATOR_ADDRESS="{address}"', f"export JAX_NUM_PROCESSES={num}",
          *([f"export JAX_PROCESS_ID={process_id}"] if process_id else []),
          f"export JAX_LOCAL_DEVICE_IDS={local_device_ids(gpus_per_node)}",
          *(f"export {k}={quote(v)}" for k, v in {**TRAIN_ENV, **job.env}.items())]


def local_device_ids(gpus_per_node: int) -> str:
  return ",".join(str(i) for i in range(gpus_per_node))


def build_slurm(job: Job, gpus: GpuCluster, *, out_dir: str = ".", partition: str | None = None,
                time_limit: str | None = None, setup: tuple[str, ...] = (), port: int = COORDINATOR_PORT) -> Launch:
  """An sbatch script: N nodes x G GPUs, one task per node, jax.distributed from SLURM's variables."""
  path = os.path.join(out_dir, f"{job.name}.sbatch")
  files = {p: os.path.abspath(p) for p in job.shipped_files}  # a shared filesystem is assumed
  per_task = f"export JAX_PROCESS_ID=$SLURM_PROCID; exec {shell_join(job.train_argv(file_names=files), wrap=False)}"
  lines = ["#!/bin/bash",
           f"# flan-jax launch --target=slurm: {job.name} on {gpus.num_nodes} nodes x {gpus.gpus_per_node} GPUs "
           f"({gpus.topology.name})",
           f"#SBATCH --job-name={job.name}", f"#SBATCH --nodes={gpus.num_nodes}", "#SBATCH --ntasks-per-node=1",
           f"#SBATCH --gpus-per-node={gpus.gpus_per_node}", "#SBATCH --exclusive",
           f"#SBATCH --output={job.name}-%j.out"]
  lines += [f"#SBATCH --partition={partition}"] * bool(partition) + [f"#SBATCH --time={time_limit}"] * bool(time_limit)
  lines += ["set -eo pipefail", *setup,
            "# jax.distributed (flan_jax/runtime/distributed.py): the first node coordinates; one process per node.",
            *_distributed_exports(f'$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1):{port}',
                                  "$SLURM_NNODES", gpus_per_node=gpus.gpus_per_node, job=job),
            f"srun --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c {quote(per_task)}"]
  steps = (WriteFile(path, "\n".join(lines), note="the batch script"),
           Command(("sbatch", path), note=f"submit it; output goes to {job.name}-<jobid>.out"))
  summary = (f"slurm: {job.name}, {gpus.num_nodes} nodes x {gpus.gpus_per_node} GPUs ({gpus.topology.name}), "
             f"{gpus.num_nodes} JAX processes, one per node; each sees {gpus.gpus_per_node} GPUs "
             f"(JAX_LOCAL_DEVICE_IDS={local_device_ids(gpus.gpus_per_node)})",
             f"MODEL_DIR {job.model_dir} (on a filesystem every node sees)")
  return Launch("slurm", summary, steps)


def build_skypilot(job: Job, gpus: GpuCluster, *, out_dir: str = ".", setup: tuple[str, ...] = (),
                   jax_version: str, port: int = COORDINATOR_PORT, cleanup: bool = False) -> Launch:
  """A SkyPilot task: the checkout as workdir, N nodes with accelerators G:n, jax.distributed from SKYPILOT_*."""
  root = _require_source("--target=skypilot")
  path = os.path.join(out_dir, f"{job.name}.sky.yaml")
  mounts, file_names = [], {}
  for p in job.shipped_files:
    if os.path.commonpath([p, root]) == root:
      file_names[p] = os.path.relpath(p, root)  # synced with the workdir
    else:
      file_names[p] = f"/tmp/flan_jax_gin/{os.path.basename(p)}"
      mounts.append(f"  {file_names[p]}: {p}")
  if setup:  # the user's own environment: its python3
    setup_lines, python = list(setup), "python3"
  else:  # a venv of a Python the pinned jax accepts, whatever the image's python3 is
    venv, _ = venv_setup(jax_version, home="$HOME")
    python = f"$HOME/{VENV}/bin/python"
    setup_lines = [f"{venv} && {python} -m pip install --quiet -e . {quote(f'jax[cuda12]=={jax_version}')}"]
  argv = job.train_argv(file_names=file_names)
  run_lines = ["set -e",
               *_distributed_exports(f'$(echo "$SKYPILOT_NODE_IPS" | head -n 1):{port}', "$SKYPILOT_NUM_NODES",
                                     "$SKYPILOT_NODE_RANK", gpus_per_node=gpus.gpus_per_node, job=job),
               f"{python} {shell_join(argv[1:], wrap=False)}"]
  indent = lambda lines: "\n".join("  " + line for line in lines)
  yaml = [f"# flan-jax launch --target=skypilot: {job.name} on {gpus.num_nodes} nodes x {gpus.gpus_per_node} GPUs "
          f"({gpus.topology.name})",
          f"name: {job.name}", f"num_nodes: {gpus.num_nodes}", "resources:",
          f"  accelerators: {gpus.skypilot_accelerator}:{gpus.gpus_per_node}", f"workdir: {root}"]
  if mounts:
    yaml += ["file_mounts:", *mounts]
  yaml += ["setup: |", indent(setup_lines), "run: |", indent(run_lines)]
  steps = [WriteFile(path, "\n".join(yaml), note="the SkyPilot task"),
           Command(("sky", "launch", "--yes", f"--cluster={job.name}", path),
                   note="provision (or reuse) the cluster, run the task and stream node 0's log")]
  if cleanup:
    steps.append(Command(("sky", "down", "--yes", job.name), note=f"tear down {job.name} (--cleanup)", always=True))
  summary = (f"skypilot: {job.name}, {gpus.num_nodes} nodes x {gpus.skypilot_accelerator}:{gpus.gpus_per_node} "
             f"({gpus.topology.name}), {gpus.num_nodes} JAX processes", f"MODEL_DIR {job.model_dir}")
  return Launch("skypilot", summary, tuple(steps))
