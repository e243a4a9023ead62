"""`flan-jax launch`: dry runs of every target, refusals before anything is created, a real 2-process run."""
import os
import subprocess
import sys
import time

import gin
import pytest

from flan_jax.runtime import gin_utils
from flan_jax.launch import launch_cli as cli, local, steps
from flan_jax.launch.slices import gpu_cluster, tpu_slice

XL = "gin/recipes/flan_t5_xl.gin"
PALM_540B = "gin/recipes/flan_palm_540b.gin"
BIG = PALM_540B if os.path.exists(gin_utils.gin_root() / "recipes" / "flan_palm_540b.gin") else \
    "gin/recipes/flan_t5_xxl.gin"
# Each recipe on a topology `flan-jax plan` says it fits, for the TPU and the GPU targets.
TOPOLOGIES = {XL: ("v4-64", "h100x16"), PALM_540B: ("v4-1024", "h100x256"),
              "gin/recipes/flan_t5_xxl.gin": ("v4-128", "h100x32")}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _clean_gin():
  yield
  gin.clear_config()


def make_prepared_data_dir(root, skip=()) -> str:
  """Empty files where `flan-jax data prepare` puts each catalogue task's data (what the launcher checks)."""
  from flan_jax.tasks.collections import catalogue
  for e in catalogue.entries():
    if e.collection == "cot":
      path = root / "cot" / f"{e.dataset}_train.tsv"
    elif e.collection == "niv2":
      path = root / "natural-instructions" / "tasks" / f"{e.dataset}.json"
    else:
      path = root / e.collection / e.name / "train.jsonl"
    if path.name not in skip:
      path.parent.mkdir(parents=True, exist_ok=True)
      path.touch()
  return str(root)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  return make_prepared_data_dir(tmp_path_factory.mktemp("flan_data"))


def _with_data(args, data_dir):
  remote = not any(a == "--target=local" for a in args)
  return [*args, f"--data_dir={data_dir}"] if remote and not any(a.startswith("--data_dir") for a in args) else list(args)


def _launch(capsys, *args, data_dir=None):
  """Runs `flan-jax launch ARGS --dry_run` in this process; returns what it printed. Remote targets
  get `--data_dir=<a prepared data dir>` unless ARGS name one."""
  args = _with_data(args, data_dir or _PREPARED[0])
  assert cli.main([*args, "--dry_run"]) == 0
  out = capsys.readouterr().out
  syntax = subprocess.run(["bash", "-n"], input=out, text=True, capture_output=True)
  assert syntax.returncode == 0, f"the dry run is not valid shell:\n{syntax.stderr}\n{out}"
  return out


def _refused(*args) -> str:
  with pytest.raises(ValueError) as e:
    cli.main([*_with_data(args, _PREPARED[0]), "--dry_run"])
  return str(e.value)


_PREPARED = [None]


@pytest.fixture(autouse=True)
def _prepared_dir(prepared):
  _PREPARED[0] = prepared


# ---------------------------------------------------------------------------------------
# Topologies.


@pytest.mark.parametrize("name,accelerator,workers", [
    ("v4-8", "v4-8", 1), ("v4-512", "v4-512", 64), ("v4-1024", "v4-1024", 128), ("v5p-1024", "v5p-1024", 128),
    ("v3-32", "v3-32", 4), ("v5e-8", "v5litepod-8", 1), ("v5e-256", "v5litepod-256", 64), ("v6e-256", "v6e-256", 64)])
def test_tpu_slices(name, accelerator, workers):
  s = tpu_slice(name)
  assert (s.accelerator_type, s.workers) == (accelerator, workers)
  assert s.workers * s.chips_per_worker == s.topology.chips


def test_gpu_clusters_and_mismatches_are_explained():
  assert gpu_cluster("h100x64", None, 8).num_nodes == 8
  c = gpu_cluster(None, 2, 8, "h200")
  assert (c.topology.name, c.skypilot_accelerator) == ("h200x16", "H200")
  with pytest.raises(ValueError, match="--num_nodes=3"):
    gpu_cluster("h100x16", 3, 8)
  with pytest.raises(ValueError, match="TPU slice"):
    gpu_cluster("v4-64", None, 8)
  with pytest.raises(ValueError, match="GPU cluster"):
    tpu_slice("h100x8")


# ---------------------------------------------------------------------------------------
# Dry runs of every target.


@pytest.mark.parametrize("recipe", [XL, BIG])
def test_tpu_vm_dry_run(capsys, recipe):
  topology = TOPOLOGIES[recipe][0]
  s = tpu_slice(topology)
  out = _launch(capsys, "--target=tpu-vm", f"--gin_file={recipe}", f"--topology={topology}",
                "--gin.MODEL_DIR=gs://bucket/run", "--zone=us-central2-b", "--cleanup")
  assert f"--accelerator-type={topology}" in out and "--version=tpu-ubuntu2204-base" in out
  assert f"{s.workers} workers" in out and s.workers > 1
  assert "gcloud compute tpus tpu-vm describe" in out  # reuse a slice that exists
  assert out.count("--worker=all") == 3  # copy the wheel, install, start
  assert "--worker=0" in out  # follow worker 0's log
  assert "FLAN_JAX_DISTRIBUTED=1" in out
  assert f"--gin_file={recipe}" in out and "--gin.MODEL_DIR=gs://bucket/run" in out
  assert "gcloud compute tpus tpu-vm delete" in out
  assert "plan: " in out and "GiB per device" in out


def test_tpu_vm_v4_512_is_64_workers_and_queued_multislice(capsys):
  # Flan-T5-XL's batch of 64 does not split over 512 devices of FSDP alone; 8-way tensor parallelism fits it.
  out = _launch(capsys, "--target=tpu-vm", f"--gin_file={XL}", "--topology=v4-512", "--gin.MeshConfig.model_parallel=8",
                "--gin.MODEL_DIR=gs://bucket/run", "--num_slices=2")
  assert "2 x v4-512 = 512 chips on 128 workers" in out
  assert "queued-resources create flan-t5-xl" in out and "--node-count=2" in out
  assert "--accelerator-type=v4-512" in out
  assert "--gin.MeshConfig.num_slices=2" in out  # hybrid mesh: data across the 2 slices
  assert "until [" in out and "ACTIVE" in out
  for node in ("flan-t5-xl-0", "flan-t5-xl-1"):
    assert f"tpu-vm ssh {node}" in out


@pytest.mark.parametrize("recipe", [XL, BIG])
def test_xpk_dry_run(capsys, recipe):
  topology = TOPOLOGIES[recipe][0]
  out = _launch(capsys, "--target=xpk", f"--gin_file={recipe}", f"--topology={topology}", "--cluster=my-gke",
                "--gin.MODEL_DIR=gs://bucket/run", "--cleanup")
  assert "xpk workload create" in out and f"--tpu-type={topology}" in out and "--num-slices=1" in out
  assert f"--script-dir={REPO}" in out and "FLAN_JAX_DISTRIBUTED=1" in out
  assert f"{tpu_slice(topology).workers} workers" in out
  assert "--wait-for-job-completion=" in out and "xpk workload delete" in out


@pytest.mark.parametrize("recipe", [XL, BIG])
def test_slurm_dry_run(capsys, recipe):
  topology = TOPOLOGIES[recipe][1]
  nodes = int(topology.split("x")[1]) // 8
  out = _launch(capsys, "--target=slurm", f"--gin_file={recipe}", f"--topology={topology}",
                "--gin.MODEL_DIR=/shared/runs/x", "--partition=gpu", "--setup=source ~/venv/bin/activate")
  for line in (f"#SBATCH --nodes={nodes}", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8",
               "#SBATCH --partition=gpu", "source ~/venv/bin/activate",
               'export JAX_COORDINATOR_ADDRESS="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1):8476"',
               "export JAX_NUM_PROCESSES=$SLURM_NNODES"):
    assert line in out, line
  assert "JAX_PROCESS_ID=$SLURM_PROCID" in out and "srun" in out and "sbatch" in out
  assert f"--gin_file={recipe}" in out


@pytest.mark.parametrize("recipe", [XL, BIG])
def test_skypilot_dry_run(capsys, recipe):
  topology = TOPOLOGIES[recipe][1]
  nodes = int(topology.split("x")[1]) // 8
  out = _launch(capsys, "--target=skypilot", f"--gin_file={recipe}", f"--num_nodes={nodes}",
                "--gin.MODEL_DIR=gs://bucket/run", "--cleanup")
  for line in (f"num_nodes: {nodes}", "  accelerators: H100:8", f"workdir: {REPO}",
               'export JAX_COORDINATOR_ADDRESS="$(echo "$SKYPILOT_NODE_IPS" | head -n 1):8476"',
               "export JAX_NUM_PROCESSES=$SKYPILOT_NUM_NODES", "export JAX_PROCESS_ID=$SKYPILOT_NODE_RANK",
               "jax[cuda12]==", "sky launch", "sky down"):
    assert line in out, line


def test_local_dry_run_gives_each_process_its_environment(capsys, monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8 --xla_dump_to=/tmp/d")
  out = _launch(capsys, "--target=local", "--gin_file=gin/recipes/quickstart.gin", "--gin.MODEL_DIR=/tmp/q",
                "--gin.BATCH_SIZE=12", "--num_processes=3", "--devices_per_process=2", "--coordinator_port=12345")
  for i in range(3):
    assert f"JAX_COORDINATOR_ADDRESS=127.0.0.1:12345 JAX_NUM_PROCESSES=3 JAX_PROCESS_ID={i} " in out
  assert out.count('XLA_FLAGS="--xla_dump_to=/tmp/d --xla_force_host_platform_device_count=2"') == 3
  assert "device_count=8" not in out


def test_train_command_keeps_gin_values_through_the_shell(capsys):
  """The command the launcher starts parses back to the same gin bindings the user gave."""
  user = ["--gin_file=gin/recipes/quickstart.gin", "--gin.MODEL_DIR=/tmp/a b", "--gin.TRAIN_STEPS=4",
          "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}", "--gin.LEARNING_RATE=1e-3"]
  launch = cli.make_launch(*gin_utils.split_gin_args(user)[:2], cli._parser().parse_args(
      ["--target=local", "--coordinator_port=1"]))
  argv = list(launch.steps[0].argv)
  assert argv[:4] == [sys.executable, "-m", "flan_jax.cli", "train"]
  assert gin_utils.split_gin_args(argv[4:])[:2] == gin_utils.split_gin_args(user)[:2]


def test_recipe_topology_macro_and_a_shipped_recipe(capsys, tmp_path):
  recipe = tmp_path / "my_xl.gin"
  recipe.write_text("include 'recipes/flan_t5_xl.gin'\nTOPOLOGY = 'v4-64'\nTRAIN_STEPS = 100\n")
  out = _launch(capsys, "--target=tpu-vm", f"--gin_file={recipe}", "--gin.MODEL_DIR=gs://bucket/run")
  assert "--accelerator-type=v4-64" in out and "8 workers" in out
  # Not a shipped recipe: copied to every worker and named there by its file name; the default
  # slice name comes from the file too.
  assert any(f"tpu-vm scp {recipe}" in line and "my-xl:~/" in line for line in out.splitlines()), out
  assert "--gin_file=my_xl.gin" in out


# ---------------------------------------------------------------------------------------
# Refusals, before anything is created.


def test_too_big_for_the_topology_is_refused():
  msg = _refused("--target=tpu-vm", f"--gin_file={BIG}", "--topology=v4-8", "--gin.MODEL_DIR=gs://bucket/run")
  assert "does not fit v4-8" in msg and "GiB per device" in msg and "Nothing was created" in msg
  if BIG == PALM_540B:
    assert "v4-512" in msg  # the smallest v4 slice that fits (half the paper's 512 chips)


def test_batch_that_does_not_split_is_refused():
  msg = _refused("--target=xpk", f"--gin_file={XL}", "--topology=v4-512", "--cluster=c", "--gin.MODEL_DIR=gs://b/r")
  assert "BATCH_SIZE=64" in msg and "v4-512" in msg


def test_pods_need_a_gcs_model_dir():
  msg = _refused("--target=tpu-vm", f"--gin_file={XL}", "--topology=v4-64", "--gin.MODEL_DIR=/tmp/run")
  assert "gs://" in msg and "8 TPU VMs" in msg
  assert "gs://" in _refused("--target=xpk", f"--gin_file={XL}", "--topology=v4-64", "--cluster=c",
                             "--gin.MODEL_DIR=/tmp/run")


def test_single_host_tpu_vm_may_use_a_local_model_dir(capsys):
  out = _launch(capsys, "--target=tpu-vm", "--gin_file=gin/recipes/quickstart.gin", "--topology=v4-8",
                "--gin.MODEL_DIR=/tmp/run")
  assert "on 1 worker " in out


def test_missing_pieces_are_named():
  assert "MODEL_DIR is not set" in _refused("--target=local", "--gin_file=gin/recipes/quickstart.gin")
  assert "--topology" in _refused("--target=tpu-vm", "--gin_file=gin/recipes/quickstart.gin", "--gin.MODEL_DIR=gs://b/r")
  assert "--cluster" in _refused("--target=xpk", f"--gin_file={XL}", "--topology=v4-64", "--gin.MODEL_DIR=gs://b/r")
  assert "for xpk" in _refused("--target=slurm", f"--gin_file={XL}", "--cluster=c", "--gin.MODEL_DIR=/r")
  assert "--name" in _refused("--target=local", "--gin_file=gin/recipes/quickstart.gin", "--name=Bad_Name")


def test_execution_without_the_cloud_tools_runs_nothing(monkeypatch):
  monkeypatch.setenv("PATH", "/nonexistent")
  with pytest.raises(FileNotFoundError, match="gcloud"):
    cli.main(["--target=tpu-vm", f"--gin_file={XL}", "--topology=v4-64", "--gin.MODEL_DIR=gs://b/r",
              f"--data_dir={_PREPARED[0]}"])


# ---------------------------------------------------------------------------------------
# Executing steps.


def _py(code):
  return (sys.executable, "-c", code)


def test_steps_stop_at_a_failure_but_cleanup_still_runs(tmp_path, capsys):
  mark = lambda name: _py(f"open({str(tmp_path / name)!r}, 'w').close()")
  launch = steps.Launch("test", ("a test",), (
      steps.Command(mark("created"), unless=_py("raise SystemExit(1)")),  # does not exist: create
      steps.Command(mark("never"), unless=_py("pass")),                   # exists: reuse
      steps.WriteFile(str(tmp_path / "job.sh"), "echo hi"),
      steps.Command(_py("raise SystemExit(7)")),
      steps.Command(mark("skipped")),
      steps.Command(mark("cleaned"), always=True)))
  assert launch.execute() == 7
  assert sorted(os.listdir(tmp_path)) == ["cleaned", "created", "job.sh"]
  assert (tmp_path / "job.sh").read_text() == "echo hi\n"
  assert launch.render().split("\n")[0] == "# a test"


def test_one_failing_process_stops_the_others(tmp_path):
  code = ("import os, sys, time\n"
          "if os.environ['JAX_PROCESS_ID'] == '1': sys.exit(3)\n"
          "time.sleep(120)")
  group = local.ProcessGroup(_py(code), tuple(local.process_envs(3, 1, 1)), str(tmp_path))
  t = time.monotonic()
  assert group.run() == 3
  assert time.monotonic() - t < 60


@pytest.mark.slow
def test_local_two_processes_train_and_checkpoint(tmp_path, capfd):
  model_dir = tmp_path / "run"
  rc = cli.main(["--target=local", "--num_processes=2", "--gin_file=gin/recipes/quickstart.gin",
                 f"--gin.MODEL_DIR={model_dir}", "--gin.TRAIN_STEPS=4", "--gin.BATCH_SIZE=4",
                 "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}", "--gin.CHECKPOINT_PERIOD=2",
                 f"--log_dir={tmp_path / 'logs'}"])
  out = capfd.readouterr().out
  assert rc == 0, out[-3000:] + (tmp_path / "logs" / "process_1.log").read_text()[-3000:]
  assert "in 2 process(es)" in out and "done: step 4" in out
  assert sorted(os.listdir(model_dir / "checkpoints")) == ["2", "4"]
  # Both processes wrote their part of the last checkpoint; only process 0 logged metrics.
  state = os.listdir(model_dir / "checkpoints" / "4" / "state")
  assert {"ocdbt.process_0", "ocdbt.process_1"} <= set(state), state
  assert "step      4/4" not in (tmp_path / "logs" / "process_1.log").read_text()


def test_gpu_target_on_a_recipe_with_a_tpu_slice_says_how_to_give_gpus():
  msg = _refused("--target=slurm", f"--gin_file={XL}", "--gin.MODEL_DIR=/shared/run")
  assert msg == ("--target=slurm needs a GPU cluster, but the recipe's TOPOLOGY is the TPU slice v4-64: give "
                 "--topology=h100xN (N GPUs) or --num_nodes=N (x --gpus_per_node=8)")


# ---------------------------------------------------------------------------------------
# Sweep plumbing (flan_jax/sweep/submit.py): submit without following, and where a run is.


@pytest.mark.parametrize("target,flags,dropped,kept", [
    ("tpu-vm", ["--topology=v4-8", "--cleanup"], "tail -n +1 -F", "setsid nohup"),
    ("xpk", ["--topology=v4-8", "--cluster=gke", "--cleanup"], "--wait-for-job-completion", "xpk workload create"),
    ("skypilot", ["--topology=h100x8", "--cleanup"], "sky launch --yes --cluster", "sky launch --detach-run --yes --cluster=run-a"),
    ("slurm", ["--topology=h100x8"], None, "sbatch "),
])
def test_a_sweep_submits_each_run_without_following_it(target, flags, dropped, kept):
  from flan_jax.sweep import submit as launch_sweep
  args = cli._parser().parse_args([f"--target={target}", "--name=run-a", *flags])
  launch = cli.make_launch(["gin/recipes/quickstart.gin"], ["MODEL_DIR = 'gs://b/run-a'"], args)
  sub = launch_sweep.split_for_sweep(launch)
  submit = sub.submit.render()
  assert kept in submit
  if dropped:
    assert dropped in launch.render() and dropped not in submit
  deletes = {"tpu-vm": "tpu-vm delete run-a", "xpk": "xpk workload delete", "skypilot": "sky down --yes run-a"}
  assert [s.render() for s in sub.cleanup] == [s.render() for s in launch.steps if s.always]
  assert (deletes[target] in sub.cleanup[0].render()) if target in deletes else not sub.cleanup


@pytest.mark.parametrize("target,output,state", [
    ("slurm", "RUNNING", "running"), ("slurm", "PENDING", "pending"), ("slurm", "COMPLETED", "succeeded"),
    ("slurm", "CANCELLED+", "failed"), ("slurm", "TIMEOUT", "failed"),
    ("tpu-vm", "exit 0", "succeeded"), ("tpu-vm", "exit 1", "failed"), ("tpu-vm", "running", "running"),
    ("skypilot", "ID  NAME  SUBMITTED  STARTED  DURATION  RESOURCES  STATUS\n1  run-a  1 min ago  1 min ago  1m  "
                 "2x[H100:8]  RUNNING", "running"),
    ("skypilot", "1  run-a  ...  SUCCEEDED", "succeeded"), ("skypilot", "1  run-a  ...  FAILED_SETUP", "failed"),
    ("xpk", "Jobset Name  Status\nrun-a  Admitted by ClusterQueue", "running"),
    ("xpk", "run-a  Finished  Jobset finished successfully", "succeeded"), ("xpk", "run-a  Failed", "failed"),
    ("slurm", "", "unknown"),
])
def test_cluster_states_read_as_one_vocabulary(target, output, state):
  from flan_jax.sweep import submit as launch_sweep
  assert launch_sweep.parse_state(target, output) == state


def test_state_probes_name_the_run_where_it_runs():
  from flan_jax.sweep import submit as launch_sweep
  args = cli._parser().parse_args(["--target=tpu-vm", "--zone=us-central2-b", "--num_slices=2", "--cluster=c"])
  [tpu] = launch_sweep.state_probe("tpu-vm", "run-a", args)
  assert tpu[:7] == ("gcloud", "compute", "tpus", "tpu-vm", "ssh", "run-a-0", "--worker=0")
  assert "~/flan_jax_launch/run-a/exit_code" in tpu[-1]
  assert launch_sweep.state_probe("xpk", "run-a", args) == [
      ("xpk", "workload", "list", "--cluster=c", "--zone=us-central2-b", "--filter-by-job=run-a")]
  assert [p[0] for p in launch_sweep.state_probe("slurm", "run-a", args)] == ["squeue", "sacct"]


# ---------------------------------------------------------------------------------------
# Launchers that start on the real images and clusters, with their data.


def test_launch_checks_the_data_dir_before_anything_is_created(capsys, tmp_path):
  # One CoT file short: refused, naming the collection, the file and the command that prepares it.
  lacking = make_prepared_data_dir(tmp_path / "lacking", skip=("gsm8k_train.tsv",))
  msg = _refused("--target=slurm", f"--gin_file={XL}", "--topology=h100x16", "--gin.MODEL_DIR=/shared/x",
                 f"--data_dir={lacking}")
  assert "collection cot: 1 of 9 files missing" in msg and "gsm8k_train.tsv" in msg, msg
  assert f"`flan-jax data prepare cot --data_dir={lacking}`" in msg and "Nothing was created" in msg
  assert "muffin" not in msg.split(":", 1)[1]  # only what is missing is named
  # A remote target without --data_dir cannot use this machine's.
  with pytest.raises(ValueError, match=r"pass --data_dir=DIR.*flan-jax data prepare niv2 --data_dir=DIR"):
    cli.main(["--target=tpu-vm", f"--gin_file={XL}", "--topology=v4-64", "--gin.MODEL_DIR=gs://b/r", "--dry_run"])
  # Prepared: the dry run shows the check and every worker gets the directory.
  out = _launch(capsys, "--target=tpu-vm", f"--gin_file={XL}", "--topology=v4-64", "--gin.MODEL_DIR=gs://b/r",
                f"--data_dir={_PREPARED[0]}")
  assert f"# data: flan2022_submix reads muffin, t0sf, niv2, cot from {_PREPARED[0]}: all" in out
  assert f"FLAN_JAX_DATA_DIR={_PREPARED[0]}" in out
  # The run's own DATA_DIR (its run config) is the workers' directory when --data_dir is not given.
  capsys.readouterr()
  assert cli.main(["--target=tpu-vm", f"--gin_file={XL}", "--topology=v4-64", "--gin.MODEL_DIR=gs://b/r",
                   f"--gin.DATA_DIR={_PREPARED[0]}", "--dry_run"]) == 0
  out = capsys.readouterr().out
  assert f"# data: flan2022_submix reads muffin, t0sf, niv2, cot from {_PREPARED[0]}: all" in out
  assert f"FLAN_JAX_DATA_DIR={_PREPARED[0]}" in out
  # The embedded mixture needs nothing prepared.
  out = _launch(capsys, "--target=slurm", "--gin_file=gin/recipes/quickstart.gin", "--num_nodes=1",
                "--gin.MODEL_DIR=/shared/q", "--skip_fit_check", "--data_dir=/nonexistent")
  assert "# data: flan_jax_embedded reads no prepared Flan collection" in out


def test_tpu_vm_installs_a_python_its_jax_accepts(capsys):
  from importlib import metadata
  from packaging.specifiers import SpecifierSet
  import jax
  out = _launch(capsys, "--target=tpu-vm", f"--gin_file={XL}", "--topology=v4-64", "--gin.MODEL_DIR=gs://b/r")
  install = next(line for line in out.splitlines() if "pip install" in line and "jax[tpu]" in line)
  python = install.split("--python ", 1)[1].split()[0]
  assert f"jax[tpu]=={jax.__version__}" in install
  requires = SpecifierSet(metadata.metadata("jax")["Requires-Python"])
  assert requires.contains(f"{python}.0"), (python, requires)
  assert "uv venv" in install and "~/flan_jax_venv/bin/python -m pip install" in install
  # The image's own python3 would be refused by this jax (3.10 on tpu-ubuntu2204-base).
  assert not requires.contains("3.10.0") or python == "3.10"
  assert f"Python {python} in ~/flan_jax_venv" in out and "the image's python3 is 3.10" in out
  train = next(line for line in out.splitlines() if "-m flan_jax.cli train" in line)
  assert train.lstrip().split("FLAN_JAX_DATA_DIR=")[1].split()[1] == "flan_jax_venv/bin/python", train
  sky = _launch(capsys, "--target=skypilot", f"--gin_file={XL}", "--num_nodes=2", "--gin.MODEL_DIR=gs://b/r")
  assert f"--python {python} $HOME/flan_jax_venv" in sky and "$HOME/flan_jax_venv/bin/python -m flan_jax.cli" in sky


_FAKE_SRUN = """#!/bin/bash
# srun as sbatch runs it for `srun --ntasks-per-node=1 CMD...`: one task per node, with SLURM's task variables.
while [[ "$1" == --* ]]; do shift; done
pids=()
for ((i = 0; i < SLURM_NNODES; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=0 SLURM_NODEID=$i SLURM_NTASKS=$SLURM_NNODES SLURM_STEP_NUM_NODES=$SLURM_NNODES \\
    SLURM_STEP_NODELIST=$SLURM_JOB_NODELIST SLURM_STEP_ID=0 "$@" &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait $p || rc=$?; done
exit $rc
"""
# Stands in for the worker's `python3 -m flan_jax.cli train ...`: starts jax.distributed as training does
# (flan_jax.runtime.distributed, jax's own SLURM detection) and reports what this process was given.
_PROBE = """
import jax
from jax._src import xla_bridge
from flan_jax.runtime import distributed
distributed.initialize_from_env()
# What jax's CUDA client is created with: the GPUs this process will see (one write per line:
# the two processes share the terminal).
import os
os.write(1, (f"process {jax.process_index()} of {jax.process_count()}: local devices "
             f"{xla_bridge.CUDA_VISIBLE_DEVICES.value}" + chr(10)).encode())
"""


def test_slurm_script_gives_each_process_all_its_nodes_gpus(tmp_path):
  port = local.free_port()
  args = cli._parser().parse_args(["--target=slurm", "--topology=h100x16", f"--out_dir={tmp_path}",
                                   f"--coordinator_port={port}", f"--data_dir={_PREPARED[0]}"])
  launch = cli.make_launch([XL], ["MODEL_DIR = '/shared/x'"], args)
  assert "2 JAX processes, one per node; each sees 8 GPUs" in launch.render()
  script = next(s for s in launch.steps if isinstance(s, steps.WriteFile)).content
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  fakes = {"srun": _FAKE_SRUN, "scontrol": '#!/bin/bash\nprintf "localhost\\nlocalhost\\n"\n',
           "python3": f'#!/bin/bash\nexec {sys.executable} -c {steps.quote(_PROBE)}\n'}
  for name, text in fakes.items():
    (bin_dir / name).write_text(text)
    (bin_dir / name).chmod(0o755)
  env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "JAX_PLATFORMS": "cpu",
         "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "gpu[001-002]", "SLURM_NNODES": "2", "SLURM_NTASKS": "2"}
  env.pop("JAX_LOCAL_DEVICE_IDS", None)
  run = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
  assert run.returncode == 0, run.stdout + run.stderr[-3000:]
  lines = sorted(line for line in run.stdout.splitlines() if line.startswith("process "))
  assert lines == [f"process {i} of 2: local devices 0,1,2,3,4,5,6,7" for i in range(2)], run.stdout


@pytest.mark.slow
def test_launch_checks_a_cache_dir_and_every_worker_reads_it(capsys, tmp_path):
  """--cache_dir: the mixture must be cached there for the recipe's lengths (else the exact
  `flan-jax data cache` command); the dry run shows the check and the workers' bindings."""
  from flan_jax.tasks import lookup
  from flan_jax.tasks import cache
  empty = tmp_path / "empty_cache"
  msg = _refused("--target=slurm", f"--gin_file={XL}", "--topology=h100x16", "--gin.MODEL_DIR=/shared/x",
                 f"--cache_dir={empty}")
  assert (f"flan2022_submix is not cached in --cache_dir={empty} (no {empty}/flan2022_submix/flan_jax_cache.train.json)"
          in msg and f"`flan-jax data cache flan2022_submix --out={empty} --inputs_length=2048 --targets_length=512 "
          f"--data_dir={_PREPARED[0]}`" in msg and "Nothing was created" in msg), msg
  # A real cache of the quickstart mixture, built for its lengths.
  lookup.import_task_modules(["flan_jax.tasks.embedded"])
  built = tmp_path / "cache"
  cache.build("flan_jax_embedded", str(built), lengths={"inputs": 256, "targets": 64}, num_shards=1,
              say=lambda *a: None)
  quick = ["--target=slurm", "--gin_file=gin/recipes/quickstart.gin", "--num_nodes=2", "--gin.MODEL_DIR=/shared/q",
           "--skip_fit_check", f"--cache_dir={built}"]
  out = _launch(capsys, *quick)
  assert f"# data: flan_jax_embedded cached in {built}: " in out and "for lengths {'inputs': 256, 'targets': 64}" in out
  import shlex
  train = next(line for line in out.splitlines() if "-m flan_jax.cli train" in line)
  argv = shlex.split(shlex.split(train)[-1])  # srun ... bash -c 'export ...; exec python3 -m flan_jax.cli train ...'
  assert "--gin.USE_CACHED_TASKS=True" in argv and f"--gin.train.seqio_cache_dirs=['{built}']" in argv, argv
  # Built for other lengths: refused, naming the rebuild.
  msg = _refused(*quick, "--gin.TASK_FEATURE_LENGTHS={'inputs': 512, 'targets': 64}")
  assert "was built for TASK_FEATURE_LENGTHS {'inputs': 256, 'targets': 64}" in msg and (
      f"`flan-jax data cache flan_jax_embedded --out={built} --inputs_length=512 --targets_length=64") in msg, msg
