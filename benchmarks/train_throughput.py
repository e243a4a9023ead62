"""Training throughput: flan_jax against Hugging Face transformers' PyTorch T5, same run.

Both train the same T5 v1.1 shape (d_model 256, d_ff 1024, 4+4 layers, 4 heads of 64,
vocab 32128) on the same random batch (8 x inputs 256 / targets 64) with Adafactor
(factored, decay 0.8, clipping 1.0, no momentum, relative step off, lr 1e-3), fp32,
on this machine's CPU. Prints tokens/s of each and the ratio flan_jax / transformers.

    python benchmarks/train_throughput.py [--steps 20] [--warmup 3] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

SHAPE = dict(vocab=32128, d_model=256, d_ff=1024, layers=4, heads=4, d_kv=64)
BATCH, INPUTS, TARGETS = 8, 256, 64


def make_batch(seed=0):
  rng = np.random.default_rng(seed)
  enc = rng.integers(2, SHAPE["vocab"], (BATCH, INPUTS)).astype(np.int32)
  tgt = rng.integers(2, SHAPE["vocab"], (BATCH, TARGETS)).astype(np.int32)
  dec_in = np.concatenate([np.zeros((BATCH, 1), np.int32), tgt[:, :-1]], axis=1)
  return enc, dec_in, tgt


def tokens_per_step():
  return BATCH * (INPUTS + TARGETS)


def bench_flan_jax(steps, warmup):
  import jax
  from flan_jax import optim, partitioning, trainer
  from flan_jax.models import t5
  cfg = t5.T5Config(vocab_size=SHAPE["vocab"], emb_dim=SHAPE["d_model"], mlp_dim=SHAPE["d_ff"],
                    num_heads=SHAPE["heads"], head_dim=SHAPE["d_kv"], num_encoder_layers=SHAPE["layers"],
                    num_decoder_layers=SHAPE["layers"])
  enc, dec_in, tgt = make_batch()
  batch = {"encoder_input_tokens": enc, "decoder_input_tokens": dec_in, "decoder_target_tokens": tgt,
           "decoder_loss_weights": np.ones_like(tgt)}
  mesh = partitioning.make_mesh(partitioning.MeshConfig(), jax.devices()[:1])
  tx, lr = optim.make_optimizer(optim.OptimizerConfig(learning_rate=1e-3), steps + warmup)
  shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()}
  tr = trainer.Trainer(t5.Transformer(cfg), tx, mesh, shapes, learning_rate_fn=lr,
                       loss=trainer.LossConfig(z_loss=0.0))
  state = tr.init_state(0)
  gbatch = trainer.global_batch(batch, tr.batch_shardings)
  for _ in range(warmup):
    state, metrics = tr.step(state, gbatch)
  jax.block_until_ready(metrics)
  t0 = time.perf_counter()
  for _ in range(steps):
    state, metrics = tr.step(state, gbatch)
  jax.block_until_ready(metrics)
  dt = time.perf_counter() - t0
  return steps * tokens_per_step() / dt, float(metrics["loss"])


def bench_transformers(steps, warmup):
  import torch
  import transformers
  from transformers.optimization import Adafactor
  cfg = transformers.T5Config(vocab_size=SHAPE["vocab"], d_model=SHAPE["d_model"], d_ff=SHAPE["d_ff"],
                              d_kv=SHAPE["d_kv"], num_heads=SHAPE["heads"], num_layers=SHAPE["layers"],
                              num_decoder_layers=SHAPE["layers"], feed_forward_proj="gated-gelu",
                              tie_word_embeddings=False, dropout_rate=0.0, decoder_start_token_id=0)
  torch.manual_seed(0)
  model = transformers.T5ForConditionalGeneration(cfg).train()
  opt = Adafactor(model.parameters(), lr=1e-3, relative_step=False, scale_parameter=True, warmup_init=False,
                  decay_rate=-0.8, clip_threshold=1.0, beta1=None)
  enc, dec_in, tgt = (torch.from_numpy(x.astype(np.int64)) for x in make_batch())

  def step():
    out = model(input_ids=enc, decoder_input_ids=dec_in, labels=tgt)
    out.loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return out.loss

  for _ in range(warmup):
    step()
  t0 = time.perf_counter()
  for _ in range(steps):
    loss = step()
  dt = time.perf_counter() - t0
  return steps * tokens_per_step() / dt, float(loss)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
  args = parser.parse_args(argv)
  import torch
  torch.set_num_threads(args.threads)
  print(f"T5 v1.1 d_model {SHAPE['d_model']}, d_ff {SHAPE['d_ff']}, {SHAPE['layers']}+{SHAPE['layers']} layers, "
        f"{SHAPE['heads']} heads, vocab {SHAPE['vocab']}; batch {BATCH} x ({INPUTS} in + {TARGETS} out); "
        f"Adafactor; fp32; {os.cpu_count()} CPU cores; {args.steps} timed steps after {args.warmup} warm-up")
  jax_tps, jax_loss = bench_flan_jax(args.steps, args.warmup)
  print(f"flan_jax      {jax_tps:10,.0f} tokens/s   (last loss {jax_loss:.3f})", flush=True)
  hf_tps, hf_loss = bench_transformers(args.steps, args.warmup)
  print(f"transformers  {hf_tps:10,.0f} tokens/s   (last loss {hf_loss:.3f})", flush=True)
  print(f"ratio flan_jax / transformers: {jax_tps / hf_tps:.2f}x")
  return 0


if __name__ == "__main__":
  sys.exit(main())
