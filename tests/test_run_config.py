"""One run config: `flan-jax train` and the planner read the same `RunConfig` from the same gin
files; `--print_config` shows it before anything is built, and a run writes it to MODEL_DIR."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import gin
import pytest

from flan_jax.planning import plan
from flan_jax.runtime import gin_utils
from flan_jax.training import config as config_lib
from flan_jax.training import trainer

QUICKSTART = "gin/recipes/quickstart.gin"


def _strict(files, bindings):
  """What `flan-jax train` builds: gin parsed as its entry point parses it, then `run_config()`."""
  gin.clear_config()
  try:
    gin_utils.parse(files, bindings, finalize=False, skip_unknown=True)
    return config_lib.run_config()
  finally:
    gin.clear_config()


def test_train_and_plan_read_the_same_run_config():
  bindings = ["MODEL_DIR = '/tmp/x'", "train.z_loss = 1e-3", "TASK_FEATURE_LENGTHS = {'inputs': 256, 'targets': 32}",
              "train.label_smoothing = 0.1"]
  trained = _strict([QUICKSTART], bindings)
  planned = plan.recipe_from_gin([QUICKSTART], bindings)
  assert planned.run == trained
  # A direct `train.*` binding reaches the planned program as it reaches the trained one.
  assert planned.loss == trained.loss == trainer.LossConfig(z_loss=1e-3, label_smoothing=0.1)
  assert trained.data.task_feature_lengths == {"inputs": 256, "targets": 32}
  assert trained.data.fewshot_budget == 240  # FLAN's 1,920/2,048 of the inputs length
  assert (planned.batch_size, planned.model_config) == (trained.data.batch_size, trained.model)


def test_planning_leaves_unset_required_settings_empty():
  run = plan.recipe_from_gin(["gin/recipes/flan_t5_xxl.gin"]).run
  assert run.checkpoint.model_dir is None  # MODEL_DIR = %gin.REQUIRED: the plan does not need it
  assert run.data.batch_size == 64 and run.model.emb_dim == 4096


def test_print_config_shows_the_run_and_writes_nothing(tmp_path):
  model_dir = tmp_path / "run"
  out = subprocess.run(
      [sys.executable, "-m", "flan_jax.cli", "train", f"--gin_file={QUICKSTART}", f"--gin.MODEL_DIR='{model_dir}'",
       "--gin.train.z_loss=0.002", "--print_config"],
      capture_output=True, text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert out.returncode == 0, out.stderr
  shown = json.loads(out.stdout)
  assert shown["checkpoint"]["model_dir"] == str(model_dir)
  assert shown["loss"]["z_loss"] == 0.002
  assert shown["model"]["family"] and shown["data"]["mixture_or_task_name"]
  assert shown["data"]["fewshot_budget"] == int(shown["data"]["task_feature_lengths"]["inputs"] * 1920 / 2048)
  assert not model_dir.exists()


def test_to_json_round_trips_every_section():
  run = _strict([QUICKSTART], ["MODEL_DIR = '/tmp/x'"])
  body = json.loads(run.to_json())
  assert set(body) == {"model", "data", "optimizer", "loss", "checkpoint", "partitioning", "evaluation",
                       "train_steps", "num_microbatches", "seed", "log_every", "on_nonfinite",
                       "peak_flops_per_device", "allow_changed_run"}
  assert body["optimizer"]["learning_rate"] == pytest.approx(run.optimizer.learning_rate)
