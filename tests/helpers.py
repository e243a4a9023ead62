"""Small models and batches shared by the tests."""
from __future__ import annotations

import jax
import numpy as np

from flan_jax.core import optim, partitioning
from flan_jax.training import trainer
from flan_jax.models import t5

TINY_T5 = t5.T5Config(vocab_size=256, emb_dim=64, num_heads=4, head_dim=16, mlp_dim=128,
                      num_encoder_layers=2, num_decoder_layers=2)


def random_encdec_batch(batch_size=8, inputs_len=16, targets_len=8, vocab=256, seed=0, packed=False):
  """A batch in EncDecFeatureConverter's format, with some padding (and packing if asked)."""
  rng = np.random.default_rng(seed)
  enc = rng.integers(2, vocab, (batch_size, inputs_len)).astype(np.int32)
  tgt = rng.integers(2, vocab, (batch_size, targets_len)).astype(np.int32)
  enc_seg = np.ones_like(enc)
  dec_seg = np.ones_like(tgt)
  for i in range(batch_size):  # ragged lengths: trailing padding
    n_in, n_out = rng.integers(inputs_len // 2, inputs_len + 1), rng.integers(targets_len // 2, targets_len + 1)
    enc[i, n_in:], enc_seg[i, n_in:] = 0, 0
    tgt[i, n_out:], dec_seg[i, n_out:] = 0, 0
    if packed and n_in > 4 and n_out > 2:
      enc_seg[i, n_in // 2:n_in] = 2
      dec_seg[i, n_out // 2:n_out] = 2
  dec_in = np.zeros_like(tgt)
  dec_in[:, 1:] = tgt[:, :-1]
  if packed:  # decoder inputs restart at each packed example
    starts = np.concatenate([np.ones((batch_size, 1), bool), dec_seg[:, 1:] != dec_seg[:, :-1]], axis=1)
    dec_in = np.where(starts, 0, dec_in)
  batch = {"encoder_input_tokens": enc, "decoder_input_tokens": dec_in, "decoder_target_tokens": tgt,
           "decoder_loss_weights": (tgt > 0).astype(np.int32)}
  if packed:
    batch.update(encoder_segment_ids=enc_seg.astype(np.int32), decoder_segment_ids=dec_seg.astype(np.int32))
  return batch


def make_trainer(mesh_config=partitioning.MeshConfig(), num_devices=None, config=TINY_T5, batch=None,
                 num_microbatches=1, opt=optim.OptimizerConfig(), tx=None, slice_of=None,
                 **loss_kw):
  batch = random_encdec_batch() if batch is None else batch
  devices = jax.devices()[:num_devices] if num_devices else jax.devices()
  if slice_of is None:
    mesh = partitioning.make_mesh(mesh_config, devices)
  else:
    mesh = partitioning.make_mesh(mesh_config, devices, slice_of=slice_of)
  opt_tx, sched = optim.make_optimizer(opt, 100)
  tx = opt_tx if tx is None else tx
  shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()}
  return trainer.Trainer(t5.Transformer(config), tx, mesh, shapes, num_microbatches=num_microbatches,
                         learning_rate_fn=sched, loss=trainer.LossConfig(**loss_kw))


def tree_max_rel_diff(a, b) -> float:
  """max over leaves of max|a-b| / max|b|."""
  diffs = [float(np.max(np.abs(np.asarray(x) - np.asarray(y))) / (np.max(np.abs(np.asarray(y))) + 1e-30))
           for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]
  return max(diffs)
