"""The decoder-only family through the same trainer: sharding invariance and a falling loss."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from flan_jax.core import optim, partitioning
from flan_jax.training import trainer
from flan_jax.models import palm
from tests.helpers import tree_max_rel_diff

TINY = palm.PaLMConfig(vocab_size=256, emb_dim=64, num_heads=4, num_kv_heads=1, head_dim=16, num_layers=2,
                       mlp_dim=128)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def prefix_lm_batch(batch_size=8, length=24, seed=0):
  """Two packed prefix-LM examples per row, as seqio's PrefixLMFeatureConverter emits them."""
  rng = np.random.default_rng(seed)
  tokens = rng.integers(2, TINY.vocab_size, (batch_size, length)).astype(np.int32)
  seg = np.where(np.arange(length) < length // 2, 1, 2).astype(np.int32)[None].repeat(batch_size, 0)
  pos = np.concatenate([np.arange(length // 2), np.arange(length - length // 2)])[None].repeat(batch_size, 0)
  prefix = (pos < 5).astype(np.int32)  # first 5 tokens of each example are the input
  inputs = np.where(pos == 0, 0, np.roll(tokens, 1, axis=1)).astype(np.int32)
  return {"decoder_target_tokens": tokens, "decoder_input_tokens": inputs,
          "decoder_loss_weights": (1 - prefix).astype(np.int32), "decoder_segment_ids": seg,
          "decoder_positions": pos.astype(np.int32), "decoder_causal_attention": prefix}


def _trainer(mesh_config, num_devices=None, config=TINY, batch=None):
  mesh = partitioning.make_mesh(mesh_config, jax.devices()[:num_devices] if num_devices else None)
  tx, lr = optim.make_optimizer(optim.OptimizerConfig(), 10)
  shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()}
  return trainer.Trainer(palm.DecoderOnlyLM(config), tx, mesh, shapes, learning_rate_fn=lr)


@pytest.mark.slow
@pytest.mark.parametrize("mesh_config", [partitioning.MeshConfig(),
                                         partitioning.MeshConfig(fsdp=True, fsdp_size=4),
                                         partitioning.MeshConfig(model_parallel=4)],
                         ids=["8xdata", "2xdata_4xfsdp", "2xdata_4xmodel"])
def test_decoder_step_is_mesh_invariant(mesh_config):
  batch = prefix_lm_batch()
  ref = _trainer(partitioning.MeshConfig(), num_devices=1, batch=batch)
  ref_state = ref.init_state(0)
  ref_loss, ref_grads = ref.loss_and_grads(ref_state.params, trainer.global_batch(batch, ref.batch_shardings))
  tr = _trainer(mesh_config, batch=batch)
  state = tr.init_state(0)
  loss, grads = tr.loss_and_grads(state.params, trainer.global_batch(batch, tr.batch_shardings))
  assert abs(float(loss) - float(ref_loss)) / float(ref_loss) < 1e-5
  assert tree_max_rel_diff(jax.device_get(grads), jax.device_get(ref_grads)) < 1e-5


@pytest.mark.slow
def test_tiny_decoder_loss_falls_on_embedded_mixture(tmp_path):
  cmd = [sys.executable, "-m", "flan_jax.cli", "train", "--gin_file=gin/recipes/quickstart_palm.gin",
         f"--gin.MODEL_DIR={tmp_path}", "--gin.TRAIN_STEPS=30", "--gin.BATCH_SIZE=8",
         "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}", "--gin.train.log_every=1"]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = [json.loads(l) for l in open(tmp_path / "train_metrics.jsonl")]
  assert rows[-1]["loss"] < 0.6 * rows[0]["loss"], (rows[0]["loss"], rows[-1]["loss"])
