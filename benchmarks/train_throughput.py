"""Training throughput: flan_jax against Hugging Face transformers' PyTorch T5, same run.

Both train the same T5 v1.1 shape (d_model 256, d_ff 1024, 4+4 layers, 4 heads of 64,
vocab 32128) on the same random batch (8 x inputs 256 / targets 64) with Adafactor
(factored, decay 0.8, clipping 1.0, no momentum, relative step off, lr 1e-3), fp32,
on this machine's CPU. Timed rounds of `--steps` steps alternate between the two (so a
busy machine slows both alike); the median round counts. Prints tokens/s of each and the
ratio flan_jax / transformers. The two last losses differ because transformers initialises an
untied LM head with standard deviation 1.0 (its first loss is 137, ours 10.9); the step's
work is the same.

Both run in one process with glibc told to keep freed memory (`retain_freed_memory`): an
XLA:CPU train step allocates its ~650 MB of temporaries anew each step, and glibc otherwise
hands blocks that large back to the kernel on free, so every step faults ~160k fresh pages
in (15-35% of flan_jax's step time here; torch faults ~100k pages per step and gains ~15%). The same for any
CPU run: MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=4294967295 in the
environment; `--no-retain-freed-memory` measures without it.

    python benchmarks/train_throughput.py [--steps 10] [--rounds 3] [--warmup 3] [--threads N]
"""
from __future__ import annotations

import argparse
import ctypes
import os
import statistics
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


def retain_freed_memory() -> bool:
  """glibc malloc: one arena, no mmap for large blocks, no trimming, so memory freed by one
  train step is reused by the next instead of being unmapped and faulted in again. Call
  before threads start (it only shapes arenas created afterwards). False where not glibc."""
  try:
    mallopt = ctypes.CDLL("libc.so.6").mallopt
  except (OSError, AttributeError):
    return False
  m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # <malloc.h>
  return all(mallopt(option, value) == 1
             for option, value in ((m_arena_max, 1), (m_mmap_max, 0), (m_trim_threshold, 2**31 - 1)))


def flan_jax_runner():
  """`run(n)` trains n steps (the first call compiles); `loss()` reads the last step's loss."""
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
  tx, lr = optim.make_optimizer(optim.OptimizerConfig(learning_rate=1e-3), total_steps=1)  # constant lr
  shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()}
  tr = trainer.Trainer(t5.Transformer(cfg), tx, mesh, shapes, learning_rate_fn=lr,
                       loss=trainer.LossConfig(z_loss=0.0))
  gbatch = trainer.global_batch(batch, tr.batch_shardings)
  carry = {"state": tr.init_state(0), "metrics": None}

  def run(n):
    state = carry["state"]
    for _ in range(n):
      state, metrics = tr.step(state, gbatch)
    carry.update(state=state, metrics=jax.block_until_ready(metrics))

  def step_flops():
    cost = tr.train_step.lower(carry["state"], gbatch).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", 0.0))

  run.step_flops = step_flops
  return run, lambda: float(carry["metrics"]["loss"])


def sgemm_peak(n=2048):
  """GFLOP/s of one n x n x n fp32 matmul, best of 5, in JAX and in torch: the practical
  ceiling of this machine for both frameworks."""
  import jax
  import jax.numpy as jnp
  import torch
  a = np.random.default_rng(0).random((n, n), np.float32)
  ja, ta = jnp.asarray(a), torch.from_numpy(a)
  mm = jax.jit(jnp.matmul)
  best = {}
  for name, fn in (("jax", lambda: mm(ja, ja).block_until_ready()), ("torch", lambda: ta @ ta)):
    fn()
    times = []
    for _ in range(5):
      t0 = time.perf_counter()
      fn()
      times.append(time.perf_counter() - t0)
    best[name] = 2 * n ** 3 / min(times) / 1e9
  return best


def transformers_runner():
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

  last = {}

  def step():
    out = model(input_ids=enc, decoder_input_ids=dec_in, labels=tgt)
    out.loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return out.loss

  def run(n):
    for _ in range(n):
      last["loss"] = step()

  return run, lambda: float(last["loss"].detach())


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=10, help="train steps per timed round")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation for flan_jax)")
  parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
  parser.add_argument("--no-retain-freed-memory", dest="retain", action="store_false",
                      help="leave glibc malloc at its defaults (see the module docstring)")
  args = parser.parse_args(argv)
  retained = args.retain and retain_freed_memory()  # before torch or XLA start threads
  import torch
  torch.set_num_threads(args.threads)
  print(f"T5 v1.1 d_model {SHAPE['d_model']}, d_ff {SHAPE['d_ff']}, {SHAPE['layers']}+{SHAPE['layers']} layers, "
        f"{SHAPE['heads']} heads, vocab {SHAPE['vocab']}; batch {BATCH} x ({INPUTS} in + {TARGETS} out); "
        f"Adafactor; fp32; {os.cpu_count()} CPU cores (load {os.getloadavg()[0]:.1f}); median of {args.rounds} "
        f"alternating rounds of {args.steps} steps after {args.warmup} warm-up; freed memory "
        f"{'retained' if retained else 'returned to the OS'}", flush=True)
  runners = {"flan_jax": flan_jax_runner(), "transformers": transformers_runner()}
  for run, _ in runners.values():
    run(args.warmup)
  times = {name: [] for name in runners}
  for _ in range(args.rounds):
    for name, (run, _) in runners.items():
      t0 = time.perf_counter()
      run(args.steps)
      times[name].append(time.perf_counter() - t0)
  tps = {name: args.steps * tokens_per_step() / statistics.median(t) for name, t in times.items()}
  for name, (_, loss) in runners.items():
    print(f"{name:<13} {tps[name]:10,.0f} tokens/s   (last loss {loss():.3f}; rounds: "
          f"{', '.join(f'{t / args.steps:.2f}' for t in times[name])} s/step)", flush=True)
  print(f"ratio flan_jax / transformers: {tps['flan_jax'] / tps['transformers']:.2f}x")
  flops = runners["flan_jax"][0].step_flops()
  if flops:
    rate = {n: flops * tps[n] / tokens_per_step() / 1e9 for n in tps}
    peak = sgemm_peak()
    print(f"train step: {flops / 1e9:.1f} GFLOP (XLA cost analysis) -> flan_jax {rate['flan_jax']:.0f}, "
          f"transformers {rate['transformers']:.0f} GFLOP/s; one 2048^3 fp32 matmul here: "
          f"jax {peak['jax']:.0f}, torch {peak['torch']:.0f} GFLOP/s; a 1.5x ratio needs flan_jax at "
          f"{1.5 * rate['transformers']:.0f} GFLOP/s")
  return 0


if __name__ == "__main__":
  sys.exit(main())
