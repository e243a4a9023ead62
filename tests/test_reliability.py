"""Runs that survive: preemption, divergence, one writer per MODEL_DIR, checkpoint
integrity, failed saves, and settings checked before anything is compiled or written."""
import glob
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from flan_jax.checkpointing import checkpoints
from flan_jax import cli
from flan_jax.core import partitioning
from flan_jax.runtime import run_guard
from flan_jax.training import train, trainer
from flan_jax.models import t5
from tests import helpers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--gin_file=gin/recipes/quickstart.gin", "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}",
         "--gin.BATCH_SIZE=8", "--gin.train.log_every=1"]


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start(model_dir, *extra, processes=2, devices=4):
  """`flan-jax train` as `processes` local processes joined by jax.distributed (tests/test_multihost.py)."""
  argv = [sys.executable, "-m", "flan_jax.cli", "train", *SMALL, f"--gin.MODEL_DIR={model_dir}", *extra]
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", PYTHONUNBUFFERED="1")
  if processes > 1:
    env.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{_free_port()}", JAX_NUM_PROCESSES=str(processes))
  return [subprocess.Popen(argv, cwd=REPO, env=dict(env, JAX_PROCESS_ID=str(i)), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True) for i in range(processes)]


def _finish(procs, timeout=600):
  return [(p.wait(timeout=timeout), *p.communicate()) for p in procs]


def _rows(model_dir):
  path = os.path.join(model_dir, "train_metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.endswith("\n")]


def _wait_for(condition, procs, what, timeout=600):
  deadline = time.time() + timeout
  while not condition():
    assert all(p.poll() is None for p in procs), f"run ended before {what}: {_finish(procs)}"
    assert time.time() < deadline, f"timed out waiting for {what}"
    time.sleep(0.02)


def _load_state(step_dir):
  """A run step's whole train state, on one device of this process (whatever mesh saved it)."""
  path = os.path.join(step_dir, "state")
  ckptr = ocp.StandardCheckpointer()
  meta = ckptr.metadata(path)
  tree = getattr(getattr(meta, "item_metadata", meta), "tree", meta)
  one = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=one), dict(tree))
  return ckptr.restore(path, target)


def _state_is_finite(step_dir):
  return all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(_load_state(step_dir))
             if np.issubdtype(np.asarray(x).dtype, np.floating))


@pytest.mark.slow
def test_sigterm_saves_on_both_processes_and_resumes_exactly_and_a_second_writer_is_refused(tmp_path):
  full, cut = str(tmp_path / "full"), str(tmp_path / "cut")
  steps = ["--gin.TRAIN_STEPS=30", "--gin.CHECKPOINT_PERIOD=100"]

  # The uninterrupted reference run; while it holds MODEL_DIR a second trainer is refused.
  ref = _start(full, *steps)
  lock_file = os.path.join(full, run_guard.LOCK_NAME)
  _wait_for(lambda: os.path.exists(lock_file) and os.path.getsize(lock_file) > 0, ref, "the lock")
  t0 = time.time()
  second = subprocess.run([sys.executable, "-m", "flan_jax.cli", "train", *SMALL, f"--gin.MODEL_DIR={full}",
                           *steps], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1"))
  refused_after = time.time() - t0
  assert second.returncode == run_guard.EXIT_LOCKED, second.stderr[-2000:]
  assert f"pid {ref[0].pid} on host {socket.gethostname()}" in second.stderr, second.stderr[-2000:]
  assert "mesh" not in second.stdout, "refused before building the mesh or compiling anything"
  print(f"second trainer refused after {refused_after:.1f}s")  # figures go in the report, not in asserts
  for rc, out, err in _finish(ref):
    assert rc == 0, err[-3000:]

  # The same run, SIGTERM'd mid-training: process 1 first, process 0 a moment later.
  procs = _start(cut, *steps)
  _wait_for(lambda: any(r["step"] >= 2 for r in _rows(cut)), procs, "step 2")
  procs[1].send_signal(signal.SIGTERM)
  time.sleep(0.05)
  procs[0].send_signal(signal.SIGTERM)
  results = _finish(procs)
  assert [rc for rc, _, _ in results] == [run_guard.EXIT_PREEMPTED] * 2, [r[2][-2000:] for r in results]
  stopped = int(results[0][2].split("SIGTERM at step ")[1].split(":")[0])
  assert 2 < stopped < 30, "the signal must land mid-training"
  assert f"SIGTERM at step {stopped}: saved checkpoint" in results[1][2], "every process says why it stopped"
  assert sorted(os.listdir(os.path.join(cut, "checkpoints"))) == [str(stopped)]

  resumed = _finish(_start(cut, *steps))
  for rc, out, err in resumed:
    assert rc == 0, err[-3000:]
  assert f"resumed from {os.path.join(cut, 'checkpoints')} at step {stopped}" in resumed[0][1]
  assert _rows(cut)[-1]["step"] == _rows(full)[-1]["step"] == 30
  assert abs(_rows(cut)[-1]["loss"] - _rows(full)[-1]["loss"]) <= 1e-6, (_rows(cut)[-1], _rows(full)[-1])

  # The first writer's checkpoint loads.
  assert _state_is_finite(os.path.join(full, "checkpoints", "30"))


@pytest.mark.slow
def test_absurd_learning_rate_stops_naming_the_step_and_keeps_the_good_checkpoints(tmp_path, capsys):
  run = str(tmp_path / "run")
  args = SMALL + [f"--gin.MODEL_DIR={run}", "--gin.CHECKPOINT_PERIOD=2"]
  assert train.main(args + ["--gin.TRAIN_STEPS=4"]) == 0
  good = sorted(os.listdir(os.path.join(run, "checkpoints")))
  assert good == ["2", "4"]
  capsys.readouterr()

  code = train.main(args + ["--gin.TRAIN_STEPS=12", "--gin.LEARNING_RATE=1e20"])
  err = capsys.readouterr().err
  assert code == run_guard.EXIT_DIVERGED, err
  assert "non-finite" in err and "at step " in err and ("stopped without saving" in err or "not saved" in err)
  assert f"Last good checkpoint: {os.path.join(run, 'checkpoints', '4')}" in err, err
  saved = sorted(os.listdir(os.path.join(run, "checkpoints")), key=int)
  assert saved[:2] == good, saved
  for step in saved:
    assert _state_is_finite(os.path.join(run, "checkpoints", step)), step
  ours = [l for l in err.strip().splitlines() if not l.startswith("compilation cache: ")]  # cache notes
  assert len(ours) == 1, "one line, no traceback"


@pytest.mark.slow
def test_skip_mode_leaves_the_state_of_a_non_finite_step_unchanged():
  batch = helpers.random_encdec_batch()
  shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()}
  mesh = partitioning.make_mesh(partitioning.MeshConfig(), jax.devices()[:1])
  # Updates scaled by 1e60 overflow float32: the loss and gradients are finite, the new state is not.
  overflow = optax.chain(optax.scale(-1e30), optax.scale(1e30))
  tr = trainer.Trainer(t5.Transformer(helpers.TINY_T5), overflow, mesh, shapes, skip_nonfinite_steps=True)
  state = tr.init_state(0)
  before = jax.device_get(state.params)
  state, m = tr.step(state, trainer.global_batch(batch, tr.batch_shardings))
  assert float(m["nonfinite"]) == 1.0 and np.isfinite(float(m["loss"])) and np.isfinite(float(m["grad_norm"]))
  assert int(state.step) == 1, "the step counter advances with the data"
  assert helpers.tree_max_rel_diff(jax.device_get(state.params), before) == 0.0, "the update was not applied"
  assert tr.state_is_finite(state)
  # What stop mode checks before every save:
  assert not tr.state_is_finite(state.replace(params=jax.tree.map(lambda x: x * np.inf, state.params)))


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
  tr = helpers.make_trainer(num_devices=1)
  state = tr.init_state(0)
  root = str(tmp_path_factory.mktemp("saved"))
  ckpts = checkpoints.RunCheckpoints(root, max_to_keep=3)
  ckpts.save(1, state, {"position": 1})
  ckpts.save(2, state, {"position": 2})
  ckpts.close()
  return tr, root


def _copy_of(saved_run, tmp_path):
  import shutil
  tr, root = saved_run
  shutil.copytree(root, tmp_path / "run")
  return tr, str(tmp_path / "run")


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate_array", "delete_array", "delete_metadata"])
def test_unreadable_newest_checkpoint_is_named_and_fallback_needs_the_flag(saved_run, tmp_path, damage):
  tr, run = _copy_of(saved_run, tmp_path)
  step2 = os.path.join(run, "checkpoints", "2")
  arrays = sorted(glob.glob(os.path.join(step2, "state", "ocdbt.process_0", "d", "*")), key=os.path.getsize)
  if damage == "truncate_array":
    with open(arrays[-1], "r+b") as f:
      f.truncate(os.path.getsize(arrays[-1]) // 2)
  elif damage == "delete_array":
    os.remove(arrays[-1])
  else:
    os.remove(os.path.join(step2, "state", "_METADATA"))
  with pytest.raises(checkpoints.CheckpointError) as e:
    checkpoints.RunCheckpoints(run).restore_latest(tr.abstract_state)
  message = str(e.value)
  assert "checkpoint step 2 is unreadable" in message and step2 in message, message
  assert "another model" not in message
  assert "--gin.train.fallback_to_previous_checkpoint=True" in message
  assert os.path.isdir(step2), "nothing is moved without the flag"

  lines = []
  step, _, data_state = checkpoints.RunCheckpoints(run).restore_latest(tr.abstract_state, fallback=True,
                                                                       say=lines.append)
  assert (step, data_state) == (1, {"position": 1})
  assert not os.path.exists(step2) and len(os.listdir(os.path.join(run, "checkpoints_unreadable"))) == 1
  assert "train.fallback_to_previous_checkpoint" in lines[0]


def test_a_changed_model_is_not_called_unreadable(saved_run, tmp_path):
  _, run = _copy_of(saved_run, tmp_path)
  other = helpers.make_trainer(num_devices=1, config=t5.T5Config(**{**helpers.TINY_T5.__dict__, "mlp_dim": 96}))
  with pytest.raises(checkpoints.CheckpointError, match="another model or optimizer.*saved \\(64, 128\\)"):
    checkpoints.RunCheckpoints(run).restore_latest(other.abstract_state)


def test_a_failed_save_is_reported_with_path_and_error(saved_run, tmp_path):
  tr, _ = saved_run
  state = tr.init_state(0)
  ckpts = checkpoints.RunCheckpoints(str(tmp_path / "run"))
  # A real write failure: files larger than 64 KiB fail with EFBIG ("File too large").
  soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
  previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
  resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, hard))
  try:
    with pytest.raises(run_guard.SaveFailed) as e:
      ckpts.save(1, state, {})
      ckpts.wait()
  finally:
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    signal.signal(signal.SIGXFSZ, previous)
  message = str(e.value)
  assert "step 1" in message and ckpts.directory in message and "File too large" in message, message
  assert "\n" not in message
  assert ckpts.all_steps() == [], "no half-written step is visible"
  assert e.value.exit_code == run_guard.EXIT_SAVE_FAILED


def test_writer_lock_refuses_a_second_holder_and_detects_a_stale_one(tmp_path):
  first = run_guard.WriterLock(str(tmp_path)).acquire()
  with pytest.raises(run_guard.WriterLockHeld, match=f"pid {os.getpid()} on host {socket.gethostname()}"):
    run_guard.WriterLock(str(tmp_path)).acquire()
  first.release()
  again = run_guard.WriterLock(str(tmp_path)).acquire()
  assert again.stale is None, "a cleanly released lock is not stale"
  again.release()

  # kill -9 leaves the holder's record but no lock: the next trainer takes over and says so.
  with open(tmp_path / run_guard.LOCK_NAME, "w") as f:
    json.dump({"pid": 999999, "host": "elsewhere", "started": "earlier"}, f)
  taken = run_guard.WriterLock(str(tmp_path)).acquire()
  assert taken.stale["pid"] == 999999
  taken.release()

  # Object stores: a marker refreshed by a heartbeat; an old one is stale.
  marker = run_guard.WriterLock(str(tmp_path / "bucket"), use_marker=True).acquire()
  with pytest.raises(run_guard.WriterLockHeld, match="marker"):
    run_guard.WriterLock(str(tmp_path / "bucket"), use_marker=True).acquire()
  marker.release()
  with open(tmp_path / "bucket" / run_guard.LOCK_NAME, "w") as f:
    json.dump({"pid": 1, "host": "gone", "heartbeat": time.time() - 3600}, f)
  late = run_guard.WriterLock(str(tmp_path / "bucket"), use_marker=True).acquire()
  assert late.stale["host"] == "gone"
  late.release()


@pytest.mark.parametrize("extra, expected", [
    (["--gin.TRAIN_STEPZ=40"], "--gin.TRAIN_STEPZ=40: no binding in the config uses %TRAIN_STEPZ"),
    (["--gin.TRAIN_STEPS=-5"], "TRAIN_STEPS=-5 must be a positive integer"),
    (["--gin.CHECKPOINT_PERIOD=0"], "CHECKPOINT_PERIOD=0 must be a positive integer"),
    (["--gin.BATCH_SIZE=16", "--gin.NUM_MICROBATCHES=3"], "BATCH_SIZE=16 is not divisible by NUM_MICROBATCHES=3"),
    (["--gin.INITIAL_CHECKPOINT_PATH=/nonexistent/ckpt"], "INITIAL_CHECKPOINT_PATH /nonexistent/ckpt does not exist"),
])
def test_bad_settings_fail_before_anything_is_written(tmp_path, capsys, extra, expected):
  run = tmp_path / "run"
  assert cli.main(["train", *SMALL, f"--gin.MODEL_DIR={run}", *extra]) == 2
  err = capsys.readouterr().err
  assert expected in err and len([l for l in err.strip().splitlines()
                                  if not l.startswith("compilation cache: ")]) == 1, err
  if "STEPZ" in expected:
    assert "did you mean TRAIN_STEPS?" in err
  assert not run.exists(), "nothing is left behind"


def test_model_dir_and_required_macros_and_gin_file_names(tmp_path, capsys):
  a_file = tmp_path / "file"
  a_file.write_text("x")
  assert cli.main(["train", *SMALL, f"--gin.MODEL_DIR={a_file}"]) == 2
  assert f"MODEL_DIR {a_file} is a file" in capsys.readouterr().err
  assert cli.main(["train", *SMALL]) == 2
  assert "MODEL_DIR is required: add --gin.MODEL_DIR=DIR" in capsys.readouterr().err
  assert cli.main(["train", "--gin_file=quickstart.gin", f"--gin.MODEL_DIR={tmp_path}"]) == 2
  err = capsys.readouterr().err
  assert "write --gin_file=gin/recipes/quickstart.gin" in err and "flan_t5_xl.gin" in err
  assert cli.main(["eval", "--gin_file=gin/runs/eval.gin", "--gin.EVAL_MIXTURES_OR_TASKS=['x']"]) == 2
  err = capsys.readouterr().err
  assert "CHECKPOINT_PATH is required: add --gin.CHECKPOINT_PATH=PATH" in err, err
