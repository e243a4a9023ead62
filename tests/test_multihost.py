"""Multi-host training as 2 local processes with jax.distributed (4 CPU devices each)."""
import json
import os
import socket
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = [
    sys.executable, "-m", "flan_jax.cli", "train", "--gin_file=gin/recipes/quickstart.gin",
    "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}", "--gin.BATCH_SIZE=8",
    "--gin.train.log_every=1", "--gin.CHECKPOINT_PERIOD=10", "--gin.train.data_sharding='global_slice'",
]


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(devices, **extra):
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", PYTHONUNBUFFERED="1")
  env.update(extra)
  return env


def _last_metrics(model_dir):
  with open(os.path.join(model_dir, "train_metrics.jsonl")) as f:
    return [json.loads(line) for line in f][-1]


def _run_two_processes(model_dir, steps):
  port = _free_port()
  procs = [subprocess.Popen(RUN + [f"--gin.MODEL_DIR={model_dir}", f"--gin.TRAIN_STEPS={steps}"], cwd=REPO,
                            env=_env(4, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                                     JAX_PROCESS_ID=str(i)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
  outs = [p.communicate(timeout=900)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  return outs


@pytest.mark.slow
def test_two_processes_match_one_process_and_checkpoint_restores_in_one(tmp_path):
  two, one = tmp_path / "two", tmp_path / "one"
  outs = _run_two_processes(two, 20)
  assert "in 2 process(es)" in outs[0] and "mesh {'data': 8" in outs[0]
  assert "step     20/20" in outs[0] and "step     20/20" not in outs[1], "only process 0 logs"

  out = subprocess.run(RUN + [f"--gin.MODEL_DIR={one}", "--gin.TRAIN_STEPS=20"], cwd=REPO, env=_env(8),
                       capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  m2, m1 = _last_metrics(two), _last_metrics(one)
  assert m2["step"] == m1["step"] == 20
  assert abs(m2["loss"] - m1["loss"]) / m1["loss"] < 1e-5, (m2["loss"], m1["loss"])

  # The checkpoint the two processes wrote together restores in a single process.
  assert sorted(os.listdir(two / "checkpoints")) == ["10", "20"]
  out = subprocess.run(RUN + [f"--gin.MODEL_DIR={two}", "--gin.TRAIN_STEPS=22"], cwd=REPO, env=_env(8),
                       capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "resumed from" in out.stdout and "at step 20" in out.stdout
  assert _last_metrics(two)["step"] == 22


def test_a_one_host_tpu_environment_is_a_single_process(monkeypatch):
  """TPU_WORKER_HOSTNAMES naming one host (what `console.quiet_libtpu` sets on a machine
  without TPU chips, and a single-host TPU VM's own value) starts no jax.distributed; a
  slice's list of hosts does."""
  import jax
  from flan_jax.runtime import distributed
  calls = []
  monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: calls.append((a, k)))
  monkeypatch.setattr(distributed, "_initialized", False)
  assert distributed.initialize_from_env({"TPU_WORKER_HOSTNAMES": "localhost"}) is False
  assert not calls
  assert distributed.initialize_from_env({"TPU_WORKER_HOSTNAMES": "t1v-0,t1v-1"}) is True
  assert calls == [((), {})]
