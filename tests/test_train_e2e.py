"""End to end through the `flan-jax train` command: learning, checkpoints, kill -9 and resume."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest


SMALL_RUN = [
    "--gin_file=gin/recipes/quickstart.gin",
    "--gin.TASK_FEATURE_LENGTHS={'inputs': 96, 'targets': 24}",
    "--gin.BATCH_SIZE=8",
    "--gin.train.log_every=1",
]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(num_devices=1):
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={num_devices}"
  env["PYTHONUNBUFFERED"] = "1"
  return env


def _train_cmd(model_dir, *extra):
  return [sys.executable, "-m", "flan_jax.cli", "train", *SMALL_RUN, f"--gin.MODEL_DIR={model_dir}", *extra]


def _metrics(model_dir):
  with open(os.path.join(model_dir, "train_metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


@pytest.mark.slow
def test_train_learns_and_leaves_a_checkpoint(tmp_path):
  model_dir = tmp_path / "run"
  out = subprocess.run(_train_cmd(model_dir, "--gin.TRAIN_STEPS=40", "--gin.CHECKPOINT_PERIOD=20"),
                       cwd=REPO, env=_env(), capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = _metrics(model_dir)
  assert rows[0]["step"] == 1 and rows[-1]["step"] == 40
  assert rows[-1]["loss"] < 0.6 * rows[0]["loss"], (rows[0]["loss"], rows[-1]["loss"])
  for key in ("accuracy", "z_loss", "grad_norm", "learning_rate", "tokens_per_sec", "mfu"):
    assert key in rows[-1]
  assert "tok/s" in out.stdout and "ETA" in out.stdout
  # Our lines only: no TensorFlow/absl C++ log lines (oneDNN, cudart_stub, cuInit), no tf.data
  # cache warnings (flan_jax/runtime/console.py, data.py).
  noise = [line for line in (out.stdout + out.stderr).splitlines()
           if re.match(r"[IWEF]\d{4} \d\d:\d\d:\d\d", line) or "absl::InitializeLog" in line
           or "oneDNN" in line or "cuInit" in line or "dataset being cached" in line]
  assert noise == [], noise[:5]
  ckpts = sorted(os.listdir(model_dir / "checkpoints"))
  assert ckpts == ["20", "40"], ckpts
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(model_dir / "train"))
  assert (model_dir / "config.gin").read_text().count("train.") > 5
  run = json.loads((model_dir / "run_config.json").read_text())  # the typed config the run ran with
  assert run["checkpoint"]["model_dir"] == str(model_dir) and run["train_steps"] == 40


@pytest.mark.slow
def test_kill_minus_9_then_resume_matches_uninterrupted_run(tmp_path):
  steps = ["--gin.TRAIN_STEPS=30", "--gin.CHECKPOINT_PERIOD=10"]
  full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
  out = subprocess.run(_train_cmd(full_dir, *steps), cwd=REPO, env=_env(), capture_output=True, text=True,
                       timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]

  proc = subprocess.Popen(_train_cmd(killed_dir, *steps), cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 900
  while not (killed_dir / "checkpoints" / "10").is_dir():
    assert proc.poll() is None, "run ended before its first checkpoint"
    assert time.time() < deadline
    time.sleep(0.05)
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  killed_at = _metrics(killed_dir)[-1]["step"]
  assert killed_at < 30, "the run finished before it was killed; the test needs a slower run"

  out = subprocess.run(_train_cmd(killed_dir, *steps), cwd=REPO, env=_env(), capture_output=True, text=True,
                       timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "resumed from" in out.stdout
  full, resumed = _metrics(full_dir), _metrics(killed_dir)
  assert resumed[-1]["step"] == full[-1]["step"] == 30
  assert abs(resumed[-1]["loss"] - full[-1]["loss"]) <= 1e-6, (resumed[-1]["loss"], full[-1]["loss"])
  assert abs(resumed[-1]["accuracy"] - full[-1]["accuracy"]) <= 1e-6


@pytest.mark.slow
def test_unknown_task_and_bad_binding_fail_fast_with_names(tmp_path):
  t0 = time.time()
  out = subprocess.run(_train_cmd(tmp_path / "x", "--gin.MIXTURE_OR_TASK_NAME='flan_jax_embeded'"), cwd=REPO,
                       env=_env(), capture_output=True, text=True, timeout=300)
  assert out.returncode == 2
  assert "unknown task or mixture 'flan_jax_embeded'" in out.stderr and "flan_jax_embedded" in out.stderr
  out = subprocess.run(_train_cmd(tmp_path / "x", "--gin.train.batch_sise=4"), cwd=REPO, env=_env(),
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 2 and "train.batch_sise" in out.stderr, out.stderr[-2000:]
  out = subprocess.run(_train_cmd(tmp_path / "x", "--gin_file=gin/recipes/no_such.gin"), cwd=REPO, env=_env(),
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 2 and "no_such.gin" in out.stderr and "quickstart.gin" in out.stderr
  assert time.time() - t0 < 120, "configuration errors must surface before any compilation"
