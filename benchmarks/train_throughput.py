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

On an accelerator (one GPU; see benchmarks/presets.py for what it imports): T5 v1.1 base, large
or XL shapes at a batch that fills the device, bf16 activations in both (flan_jax's
T5Config.dtype, transformers under torch.autocast; parameters and optimizer state fp32 in both),
tokens/s and MFU (model FLOPs of flan_jax.training.flops against the chip's bf16 peak, and against a
bf16 matmul measured in the same run):

    python benchmarks/train_throughput.py --preset t5_large --dtype bf16 [--steps 10 --rounds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

import presets  # noqa: F401  (sys.path and environment first)

PRESET = presets.PRESETS["cpu"]


def make_batch(p: presets.Preset = PRESET, seed=0):
  rng = np.random.default_rng(seed)
  enc = rng.integers(2, p.vocab, (p.batch, p.inputs)).astype(np.int32)
  tgt = rng.integers(2, p.vocab, (p.batch, p.targets)).astype(np.int32)
  dec_in = np.concatenate([np.zeros((p.batch, 1), np.int32), tgt[:, :-1]], axis=1)
  return enc, dec_in, tgt


def tokens_per_step(p: presets.Preset = PRESET):
  return p.batch * (p.inputs + p.targets)


def flan_jax_runner(p: presets.Preset = PRESET, dtype: str = "float32"):
  """`run(n)` trains n steps (the first call compiles); `loss()` reads the last step's loss."""
  import jax
  from flan_jax.core import optim, partitioning
  from flan_jax.training import trainer
  from flan_jax.models import t5
  cfg = p.flan_jax_config(dtype)
  enc, dec_in, tgt = make_batch(p)
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
  run.config = cfg
  return run, lambda: float(carry["metrics"]["loss"])


def transformers_runner(p: presets.Preset = PRESET, dtype: str = "float32"):
  import torch
  import transformers
  from transformers.optimization import Adafactor
  device = presets.torch_device()
  torch.manual_seed(0)
  model = transformers.T5ForConditionalGeneration(p.transformers_config()).to(device).train()
  opt = Adafactor(model.parameters(), lr=1e-3, relative_step=False, scale_parameter=True, warmup_init=False,
                  decay_rate=-0.8, clip_threshold=1.0, beta1=None)
  enc, dec_in, tgt = (torch.from_numpy(x.astype(np.int64)).to(device) for x in make_batch(p))
  autocast = dtype != "float32"

  last = {}

  def step():
    with torch.autocast(device.type, dtype=getattr(torch, dtype), enabled=autocast):
      out = model(input_ids=enc, decoder_input_ids=dec_in, labels=tgt)
    out.loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return out.loss

  def run(n):
    for _ in range(n):
      last["loss"] = step()
    presets.synchronize(device)

  return run, lambda: float(last["loss"].detach())


def sgemm_peak(n=2048):
  """GFLOP/s of one n x n x n fp32 matmul, best of 5, in JAX and in torch."""
  return {k: v / 1e9 for k, v in presets.matmul_peak("float32", n).items()}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--preset", default="cpu", choices=sorted(presets.PRESETS),
                      help="model shape, batch and lengths (benchmarks/presets.py)")
  parser.add_argument("--dtype", default="fp32", choices=sorted(presets.DTYPES), help="activation dtype of both")
  parser.add_argument("--batch", type=int, help="override the preset's batch size")
  parser.add_argument("--inputs", type=int, help="override the preset's input length")
  parser.add_argument("--targets", type=int, help="override the preset's target length")
  parser.add_argument("--steps", type=int, default=10, help="train steps per timed round")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation for flan_jax)")
  parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads (CPU)")
  parser.add_argument("--peak_tflops", type=float, help="bf16 peak of the device (default: flan_jax.training.flops' table)")
  parser.add_argument("--skip_flops", action="store_true", help="tokens/s only: no FLOP rates, MFU or matmul peak")
  parser.add_argument("--no-retain-freed-memory", dest="retain", action="store_false",
                      help="leave glibc malloc at its defaults (see the module docstring)")
  args = parser.parse_args(argv)
  from flan_jax.runtime import host_memory
  # Before torch or XLA start threads; only where the step runs on the CPU.
  retained = args.retain and host_memory.runs_on_cpu() and host_memory.retain_freed_memory()
  p = presets.with_overrides(presets.PRESETS[args.preset], args.batch, args.inputs, args.targets)
  dtype = presets.DTYPES[args.dtype]
  import jax
  import torch
  torch.set_num_threads(args.threads)
  device = jax.devices()[0]
  where = (f"{device.device_kind} + torch {presets.torch_device()}" if device.platform != "cpu"
           else f"{os.cpu_count()} CPU cores (load {os.getloadavg()[0]:.1f})")
  print(f"{p.describe()}; batch {p.batch} x ({p.inputs} in + {p.targets} out); Adafactor; {args.dtype}; "
        f"{where}; median of {args.rounds} alternating rounds of {args.steps} steps after {args.warmup} warm-up; "
        f"freed memory {'retained' if retained else 'returned to the OS'}", flush=True)
  runners = {"flan_jax": flan_jax_runner(p, dtype), "transformers": transformers_runner(p, dtype)}
  for run, _ in runners.values():
    run(args.warmup)
  times = {name: [] for name in runners}
  for _ in range(args.rounds):
    for name, (run, _) in runners.items():
      t0 = time.perf_counter()
      run(args.steps)
      times[name].append(time.perf_counter() - t0)
  tps = {name: args.steps * tokens_per_step(p) / statistics.median(t) for name, t in times.items()}
  for name, (_, loss) in runners.items():
    print(f"{name:<13} {tps[name]:10,.0f} tokens/s   (last loss {loss():.3f}; rounds: "
          f"{', '.join(f'{t / args.steps:.3f}' for t in times[name])} s/step)", flush=True)
  print(f"ratio flan_jax / transformers: {tps['flan_jax'] / tps['transformers']:.2f}x", flush=True)
  if args.skip_flops:
    return 0
  from flan_jax.training import flops
  model_flops = flops.train_step_flops(runners["flan_jax"][0].config, p.batch, p.inputs, p.targets)
  rate = {n: model_flops * tps[n] / tokens_per_step(p) for n in tps}
  if device.platform != "cpu":
    peak = args.peak_tflops * 1e12 if args.peak_tflops else flops.peak_flops_for_device(device)
    measured = presets.matmul_peak(dtype)
    for name in rate:
      mfu = f"MFU {rate[name] / peak:.1%} of {peak / 1e12:.0f} TFLOP/s" if peak else "MFU: peak unknown (--peak_tflops)"
      print(f"{name:<13} {rate[name] / 1e12:8.1f} TFLOP/s model FLOPs; {mfu}; "
            f"{rate[name] / measured['jax']:.1%} of a measured {args.dtype} matmul "
            f"({measured['jax'] / 1e12:.0f} jax / {measured['torch'] / 1e12:.0f} torch TFLOP/s)", flush=True)
    return 0
  xla_flops = runners["flan_jax"][0].step_flops()
  if xla_flops:
    rate = {n: xla_flops * tps[n] / tokens_per_step(p) / 1e9 for n in tps}
    peak = sgemm_peak()
    print(f"train step: {xla_flops / 1e9:.1f} GFLOP (XLA cost analysis; model FLOPs {model_flops / 1e9:.1f}) -> "
          f"flan_jax {rate['flan_jax']:.0f}, transformers {rate['transformers']:.0f} GFLOP/s; one 2048^3 fp32 "
          f"matmul here: jax {peak['jax']:.0f}, torch {peak['torch']:.0f} GFLOP/s")
  return 0


if __name__ == "__main__":
  sys.exit(main())
