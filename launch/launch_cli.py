"""`flan-jax launch`: run a recipe on a TPU pod, a GPU cluster or several local processes.

    flan-jax launch --target=tpu-vm --gin_file=gin/recipes/flan_t5_xl.gin --topology=v4-64 \\
      --gin.MODEL_DIR=gs://BUCKET/flan_t5_xl --zone=us-central2-b --dry_run
    flan-jax launch --target=local --num_processes=2 --gin_file=gin/recipes/quickstart.gin \\
      --gin.MODEL_DIR=/tmp/quickstart_2proc

Targets: tpu-vm (gcloud TPU VMs), xpk (GKE), slurm (sbatch), skypilot (sky launch), local.
The topology comes from --topology or a `TOPOLOGY = 'v4-512'` macro in the recipe; before
anything is created the recipe is planned on it (`flan_jax.planning.plan`) and refused if it does
not fit. --dry_run prints exactly the commands, scripts and YAML it would run.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import tempfile
from typing import Sequence


from flan_jax.runtime import gin_utils
from flan_jax.launch import job as job_lib
from flan_jax.launch.steps import Launch

# `plan` (and `targets`/`topology`, which use it) import JAX: imported where used, so
# `flan-jax launch --help` answers without them.

TPU_TARGETS = ("tpu-vm", "xpk")
GPU_TARGETS = ("slurm", "skypilot")
TARGETS = TPU_TARGETS + GPU_TARGETS + ("local",)
_REMOTE = TPU_TARGETS + GPU_TARGETS

# Which targets use each target-specific flag (a flag given to another target is an error).
FLAG_TARGETS = {
    "topology": _REMOTE, "skip_fit_check": _REMOTE, "zone": TPU_TARGETS, "project": TPU_TARGETS,
    "num_slices": TPU_TARGETS, "queued": ("tpu-vm",), "spot": ("tpu-vm",), "runtime_version": ("tpu-vm",),
    "install": ("tpu-vm",), "cluster": ("xpk",), "docker_image": ("xpk",), "base_docker_image": ("xpk",),
    "num_nodes": GPU_TARGETS, "gpus_per_node": GPU_TARGETS, "gpu_type": GPU_TARGETS, "setup": GPU_TARGETS,
    "out_dir": GPU_TARGETS, "partition": ("slurm",), "time": ("slurm",),
    "coordinator_port": GPU_TARGETS + ("local",), "jax_version": TPU_TARGETS + ("skypilot",),
    "cleanup": ("tpu-vm", "xpk", "skypilot"), "num_processes": ("local",), "devices_per_process": ("local",),
    "platform": ("local",), "log_dir": ("local",),
}


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="flan-jax launch", formatter_class=argparse.RawDescriptionHelpFormatter,
      usage="flan-jax launch --target=T --gin_file=RECIPE [--gin.KEY=VALUE ...] [flags] [--dry_run]",
      description=__doc__.split("\n\n", 1)[1].strip(),
      epilog="gin: --gin_file=RECIPE (required; repeatable) and --gin.KEY=VALUE, as for `flan-jax train`.\n"
             "A flag of another target's group is an error. Many runs at once: `flan-jax sweep --target=T`.")
  p.add_argument("--target", required=True, choices=TARGETS, help="where to run: " + ", ".join(TARGETS))
  p.add_argument("--name", help="TPU VM / workload / job / cluster name (default: from the recipe)")
  p.add_argument("--dry_run", action="store_true", help="print what would run, run nothing")
  p.add_argument("--cleanup", action="store_true", help="delete the TPU VM / workload / cluster afterwards")
  p.add_argument("--topology", help="v4-512, v5p-1024, v5e-256, h100x64, ... (default: the recipe's TOPOLOGY)")
  p.add_argument("--skip_fit_check", action="store_true", help="launch even if `flan-jax plan` says it won't fit")
  p.add_argument("--data_dir", help="prepared Flan data every worker reads (FLAN_JAX_DATA_DIR; default the "
                                    "recipe's DATA_DIR); checked first")
  p.add_argument("--cache_dir", action="append", default=[],
                 help="a `flan-jax data cache` output every worker reads (repeatable): the workers train with "
                      "USE_CACHED_TASKS=True and train.seqio_cache_dirs; checked first instead of --data_dir")
  p.add_argument("--skip_data_check", action="store_true", help="launch even if --data_dir lacks the mixture")
  g = p.add_argument_group("TPU (tpu-vm, xpk)")
  g.add_argument("--zone", help="Cloud zone, e.g. us-central2-b (default: gcloud's / xpk's configured one)")
  g.add_argument("--project", help="Cloud project (default: gcloud's configured one)")
  g.add_argument("--num_slices", type=int, default=1,
                 help="N > 1: N slices, a hybrid mesh with only the data axis across slices (default 1)")
  g.add_argument("--queued", action="store_true", help="tpu-vm: request via queued resources (always for >1 slice)")
  g.add_argument("--spot", action="store_true", help="tpu-vm: spot capacity")
  g.add_argument("--runtime_version", help="tpu-vm: TPU software version (default by TPU generation)")
  g.add_argument("--install", default="wheel",
                 help="tpu-vm: 'wheel' (build one from this checkout, copy it) or a pip requirement "
                      "such as git+https://github.com/ORG/flan_jax@COMMIT")
  g.add_argument("--cluster", help="xpk: GKE cluster name")
  g.add_argument("--docker_image",
                 help="xpk: an image with flan_jax installed (default: this checkout on --base_docker_image)")
  g.add_argument("--base_docker_image", default="python:3.11", help="xpk: base image under this checkout")
  g.add_argument("--jax_version", default=None,
                 help="jax[tpu] / jax[cuda12] version installed remotely (default: this machine's jax version)")
  g = p.add_argument_group("GPU clusters (slurm, skypilot)")
  g.add_argument("--num_nodes", type=int, help="nodes (default: from --topology=h100xN / --gpus_per_node)")
  g.add_argument("--gpus_per_node", type=int, default=8, help="GPUs per node, one JAX process each node (default 8)")
  g.add_argument("--gpu_type", default="h100", choices=("h100", "h200", "a100"),
                 help="GPU model when the cluster is given by --num_nodes (default h100)")
  g.add_argument("--setup", action="append", default=[],
                 help="shell line run before training (repeatable), e.g. 'source ~/venv/bin/activate'")
  g.add_argument("--partition", help="slurm partition")
  g.add_argument("--time", help="slurm time limit, e.g. 24:00:00")
  g.add_argument("--out_dir", default=".", help="where the sbatch script / SkyPilot YAML is written")
  g.add_argument("--coordinator_port", type=int,
                 help="jax.distributed coordinator port (default 8476; local: a free one)")
  g = p.add_argument_group("local")
  g.add_argument("--num_processes", type=int, default=2, help="JAX processes on this machine (default 2)")
  g.add_argument("--devices_per_process", type=int, default=1, help="devices each process sees (default 1)")
  g.add_argument("--platform", default="cpu", choices=("cpu", "gpu"),
                 help="cpu: XLA_FLAGS gives each process --devices_per_process CPU devices; "
                      "gpu: JAX_LOCAL_DEVICE_IDS splits this machine's GPUs")
  g.add_argument("--log_dir", help="logs of processes 1..N-1 (default: a directory under the system temp dir)")
  return p


def _check_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
  for flag, used_by in FLAG_TARGETS.items():
    if args.target not in used_by and getattr(args, flag) != parser.get_default(flag):
      raise ValueError(f"--{flag} does not apply to --target={args.target} (it is for {', '.join(used_by)})")
  if args.num_slices < 1:
    raise ValueError(f"--num_slices={args.num_slices}; give at least 1")


def read_recipe(files: Sequence[str], bindings: Sequence[str]) -> tuple[plan.Recipe, dict]:
  """The recipe's numbers (for planning, with the run config `flan-jax train` will run) and the
  settings a launch needs: TOPOLOGY, MODEL_DIR, MIXTURE_OR_TASK_NAME, TASK_FEATURE_LENGTHS and DATA_DIR;
  leaves no gin state behind."""
  from flan_jax.planning import plan
  recipe = plan.recipe_from_gin(files, bindings)
  scalar = lambda v: v if isinstance(v, (str, int, float)) else None  # e.g. %gin.REQUIRED: unset
  run = recipe.run
  lengths = run.data.task_feature_lengths
  macros = {"TOPOLOGY": recipe.topology, "MODEL_DIR": scalar(run.checkpoint.model_dir),
            "MIXTURE_OR_TASK_NAME": scalar(run.data.mixture_or_task_name),
            "TASK_FEATURE_LENGTHS": dict(lengths) if isinstance(lengths, dict) else None,
            "DATA_DIR": scalar(run.data.data_dir)}
  return recipe, macros


@functools.lru_cache(maxsize=4)
def _planner(recipe: plan.Recipe) -> plan.Planner:
  from flan_jax.planning import plan
  return plan.Planner(recipe)


def check_fits(recipe: plan.Recipe, topology: plan.Topology, files: Sequence[str], what: str) -> plan.Plan:
  """Plans `recipe` on `topology`; a ValueError naming the shortfall if it cannot run there."""
  from flan_jax.planning import plan
  planner = _planner(recipe)
  command = f"flan-jax plan {' '.join('--gin_file=' + f for f in files)} --topology={topology.name}"
  override = "Nothing was created; --skip_fit_check launches anyway."
  try:
    p = planner.plan(topology)
  except ValueError as e:
    raise ValueError(f"{what} cannot run on {topology.name}: {e}. {override}") from e
  if not p.fits:
    smallest = plan.smallest_fitting(planner, topology, p.mfu)
    hint = (f"the smallest {topology.family} size that fits is {smallest.topology.name} "
            f"({smallest.total / plan.GiB:.1f} GiB per device)" if smallest
            else f"no {topology.family} size fits with this recipe's mesh settings")
    mesh = " x ".join(f"{a}={n}" for a, n in p.mesh_shape.items())
    raise ValueError(
        f"{what} does not fit {topology.name}: it needs {p.total / plan.GiB:.1f} GiB per device and a device has "
        f"{p.hbm / plan.GiB:.1f} GiB (mesh {mesh}); {hint}. Breakdown: `{command}`. {override}")
  return p


def make_launch(files: Sequence[str], bindings: Sequence[str], args: argparse.Namespace) -> Launch:
  """Everything short of running: reads the recipe, picks and checks the topology, builds the steps."""
  import jax
  from flan_jax.planning import plan
  from flan_jax.launch import local, targets
  from flan_jax.launch.slices import gpu_cluster, tpu_slice
  if args.jax_version is None:
    args = argparse.Namespace(**{**vars(args), "jax_version": jax.__version__})
  if args.num_slices > 1:  # hybrid mesh: fsdp/model inside a slice, data across slices
    bindings = [*bindings, f"MeshConfig.num_slices = {args.num_slices}"]
  recipe, macros = read_recipe(files, bindings)
  data_dir = args.data_dir or macros["DATA_DIR"]  # else the run's own DATA_DIR is what its workers read
  name = job_lib.check_name(args.name or job_lib.default_name(files))
  model_dir = macros["MODEL_DIR"]
  if not model_dir:
    example = {"local": "/tmp/", "slurm": "/shared/runs/"}.get(args.target, "gs://BUCKET/") + name
    raise ValueError(f"MODEL_DIR is not set: add --gin.MODEL_DIR={example} (checkpoints and logs go there)")
  cache_dirs = list(getattr(args, "cache_dir", None) or ())
  if cache_dirs:  # every worker reads the cache (T5X: USE_CACHED_TASKS + --seqio_additional_cache_dirs)
    bindings = [*bindings, "USE_CACHED_TASKS = True", f"train.seqio_cache_dirs = {cache_dirs!r}"]
  job = job_lib.Job(name, tuple(job_lib.portable_gin_file(f) for f in files), tuple(bindings), str(model_dir),
                    data_dir=data_dir)
  what = os.path.basename(files[-1])
  if args.skip_data_check:
    data_line = "data check skipped (--skip_data_check)"
  elif cache_dirs:
    data_line = job_lib.check_cache(str(macros["MIXTURE_OR_TASK_NAME"]), cache_dirs,
                                    macros["TASK_FEATURE_LENGTHS"], data_dir=data_dir)
  else:
    data_line = job_lib.check_data(
        str(macros["MIXTURE_OR_TASK_NAME"]), data_dir or (job_lib.local_data_dir() if args.target == "local" else None),
        where=f"--target={args.target}'s workers")

  if args.target == "local":
    per_process = recipe.batch_size / args.num_processes
    if per_process != int(per_process):
      raise ValueError(f"BATCH_SIZE={recipe.batch_size} does not split over --num_processes={args.num_processes} "
                       f"(each process reads BATCH_SIZE / num_processes rows)")
    log_dir = args.log_dir or os.path.join(tempfile.gettempdir(), f"flan_jax_launch_{name}")
    launch = local.build(job, num_processes=args.num_processes, devices_per_process=args.devices_per_process,
                         platform=args.platform, port=args.coordinator_port, log_dir=log_dir)
    return dataclasses.replace(launch, summary=launch.summary + (data_line,))

  topology = args.topology or macros["TOPOLOGY"]
  port = args.coordinator_port or targets.COORDINATOR_PORT
  if args.target in TPU_TARGETS:
    if not topology:
      raise ValueError(f"--target={args.target} needs a TPU slice: --topology=v4-512 (or TOPOLOGY = 'v4-512' in "
                       f"the recipe); `flan-jax plan --gin_file={files[-1]} --topology=v4-8` names the smallest "
                       f"that fits")
    tpu = tpu_slice(topology)
    workers = tpu.workers * args.num_slices
    if (workers > 1 or args.target == "xpk") and not job.model_dir.startswith("gs://"):
      where = (f"{workers} TPU VMs that share no disk" if args.target == "tpu-vm"
               else "GKE containers whose disks vanish with them")
      raise ValueError(f"MODEL_DIR={job.model_dir} is not a gs:// path, but {tpu.accelerator_type} x "
                       f"{args.num_slices} runs on {where}: every process writes its part of each checkpoint "
                       f"to MODEL_DIR. Use --gin.MODEL_DIR=gs://BUCKET/{name}")
    planned = tpu.topology.with_size(tpu.topology.size * args.num_slices)
  else:
    tpu = None
    recipe_topology = None if args.num_nodes else macros["TOPOLOGY"]
    if not args.topology and recipe_topology and not plan.parse_topology(recipe_topology).is_gpu:
      raise ValueError(f"--target={args.target} needs a GPU cluster, but the recipe's TOPOLOGY is the TPU slice "
                       f"{recipe_topology}: give --topology={args.gpu_type}xN (N GPUs) or --num_nodes=N "
                       f"(x --gpus_per_node={args.gpus_per_node})")
    gpus = gpu_cluster(args.topology or recipe_topology, args.num_nodes, args.gpus_per_node, args.gpu_type)
    planned = gpus.topology
  fit_line = "fit check skipped (--skip_fit_check)"
  if not args.skip_fit_check:
    p = check_fits(recipe, planned, files, what)
    mesh = " x ".join(f"{a}={n}" for a, n in p.mesh_shape.items())
    fit_line = (f"plan: {p.total / plan.GiB:.1f} of {p.hbm / plan.GiB:.1f} GiB per device on {planned.name} "
                f"(mesh {mesh}), ~{p.step_seconds:.2f} s/step at {p.mfu:.0%} MFU")

  if args.target == "tpu-vm":
    launch = targets.build_tpu_vm(job, tpu, num_slices=args.num_slices, zone=args.zone, project=args.project,
                                  queued=args.queued, spot=args.spot, runtime_version=args.runtime_version,
                                  install=args.install, jax_version=args.jax_version, cleanup=args.cleanup)
  elif args.target == "xpk":
    launch = targets.build_xpk(job, tpu, cluster=args.cluster, num_slices=args.num_slices, zone=args.zone,
                               project=args.project, docker_image=args.docker_image,
                               base_docker_image=args.base_docker_image, jax_version=args.jax_version,
                               cleanup=args.cleanup)
  elif args.target == "slurm":
    launch = targets.build_slurm(job, gpus, out_dir=args.out_dir, partition=args.partition, time_limit=args.time,
                                 setup=tuple(args.setup), port=port)
  else:
    launch = targets.build_skypilot(job, gpus, out_dir=args.out_dir, setup=tuple(args.setup),
                                    jax_version=args.jax_version, port=port, cleanup=args.cleanup)
  return dataclasses.replace(launch, summary=launch.summary + (fit_line, data_line))


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  files, bindings, rest = gin_utils.split_gin_args(argv)
  parser = _parser()
  args = parser.parse_args(rest)
  if not files:
    parser.error("give the recipe: --gin_file=gin/recipes/... (repeatable)")
  _check_flags(args, parser)
  for flag, value in vars(args).items():  # values that end up in scripts: no newlines
    if isinstance(value, (str, list, tuple)):
      job_lib.check_plain_text(f"--{flag}", value)
  launch = make_launch(files, bindings, args)
  if args.dry_run:
    print(launch.render(), flush=True)
    return 0
  return launch.execute()


if __name__ == "__main__":
  sys.exit(main())
