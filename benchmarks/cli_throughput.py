"""`flan-jax train` against benchmarks/train_throughput.py's flan_jax loop, same shape, same run.

The shape is train_throughput.py's CPU preset (T5 v1.1: d_model 256, d_ff 1024, 4+4 layers, 4
heads of 64, vocab 32128; batch 8 x inputs 256 / targets 64; Adafactor at lr 1e-3, no z-loss,
fp32). Alternating rounds:
  cli    `flan-jax train` of the quickstart recipe with that model and batch (the embedded
         mixture, packed to 256/64, so every step has the benchmark's tensor shapes), in a
         process of its own: everything the command does per step (input pipeline, metrics,
         divergence checks, logging, checkpoint checks). Its step time is read from its own
         log (`steps_per_sec` of each logging interval after the first, which holds compiling);
  bench  the benchmark's loop: the same step on one fixed dense batch, in this process.
Prints the median step time of each and the command's speed as a fraction of the benchmark's,
in tokens/s of the shape (8 x 320 tokens per step; the command's log counts only the non-padding
tokens of its packed batches, so its own tok/s figure is lower by the padding fraction).

    python benchmarks/cli_throughput.py [--steps 20] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import presets  # noqa: F401  (sys.path and environment first)
import train_throughput

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli_args(p: presets.Preset, model_dir: str, steps: int, intervals: int) -> list[str]:
  return [
      "--gin_file=gin/recipes/quickstart.gin", f"--gin.MODEL_DIR={model_dir}",
      f"--gin.T5Config.emb_dim={p.d_model}", f"--gin.T5Config.mlp_dim={p.d_ff}",
      f"--gin.T5Config.num_heads={p.heads}", f"--gin.T5Config.head_dim={p.d_kv}",
      f"--gin.T5Config.num_encoder_layers={p.layers}", f"--gin.T5Config.num_decoder_layers={p.layers}",
      f"--gin.VOCAB_SIZE={p.vocab}", f"--gin.BATCH_SIZE={p.batch}",
      f"--gin.TASK_FEATURE_LENGTHS={{'inputs': {p.inputs}, 'targets': {p.targets}}}",
      "--gin.Z_LOSS=0.0", "--gin.LEARNING_RATE=1e-3", f"--gin.TRAIN_STEPS={steps * intervals}",
      f"--gin.train.log_every={steps}", "--gin.CHECKPOINT_PERIOD=1000000", "--gin.train.async_checkpointing=False",
  ]


def cli_round(p: presets.Preset, steps: int, intervals: int) -> list[float]:
  """Seconds per step of each logging interval after the first of one `flan-jax train`."""
  work = tempfile.mkdtemp(prefix="flan_jax_cli_tput_")
  try:
    model_dir = os.path.join(work, "run")
    cmd = [sys.executable, "-m", "flan_jax.cli", "train", *cli_args(p, model_dir, steps, intervals)]
    out = subprocess.run(cmd, cwd=_ROOT, capture_output=True, text=True)
    if out.returncode:
      raise SystemExit(f"flan-jax train exited {out.returncode}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    with open(os.path.join(model_dir, "train_metrics.jsonl")) as f:
      rows = [json.loads(line) for line in f]
    # rows: step 1 (compiles), then one per `steps` steps; the first of those starts right after compiling
    return [1.0 / r["steps_per_sec"] for r in rows[2:]]
  finally:
    shutil.rmtree(work, ignore_errors=True)


def packed_runner(p: presets.Preset):
  """The benchmark's loop on one fixed batch of the command's packed data (segment ids and
  positions included): the step the command runs, without anything around it."""
  import jax
  from flan_jax.tasks import lookup
  from flan_jax.training import data, trainer
  from flan_jax.core import optim, partitioning
  from flan_jax.models import t5
  lookup.import_task_modules(["flan_jax.tasks.embedded"])
  lengths = {"inputs": p.inputs, "targets": p.targets}
  batches = data.BatchIterator("flan_jax_embedded", lengths, p.batch)
  batch = next(batches)
  batches.close()
  mesh = partitioning.make_mesh(partitioning.MeshConfig(), jax.devices()[:1])
  tx, lr = optim.make_optimizer(optim.OptimizerConfig(learning_rate=1e-3), total_steps=1)
  tr = trainer.Trainer(t5.Transformer(p.flan_jax_config()), tx, mesh, batches.global_shapes(), learning_rate_fn=lr,
                       loss=trainer.LossConfig(z_loss=0.0))
  gbatch = trainer.global_batch(batch, tr.batch_shardings)
  carry = {"state": tr.init_state(0)}

  def run(n):
    state = carry["state"]
    for _ in range(n):
      state, metrics = tr.step(state, gbatch)
    carry["state"] = state
    jax.block_until_ready(metrics)

  return run


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=20, help="steps per timed interval")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--intervals", type=int, default=3, help="logging intervals per command run (first dropped)")
  args = parser.parse_args(argv)
  from flan_jax.runtime import host_memory
  host_memory.retain_freed_memory_on_cpu()  # as the command does on CPU
  p = train_throughput.PRESET
  loops = {"bench": train_throughput.flan_jax_runner(p)[0], "packed": packed_runner(p)}
  for run in loops.values():
    run(2)  # compile
  times = {"cli": [], "bench": [], "packed": []}
  for r in range(args.rounds):
    cli = cli_round(p, args.steps, args.intervals)
    times["cli"] += cli
    for name, run in loops.items():
      for _ in range(len(cli)):
        t0 = time.perf_counter()
        run(args.steps)
        times[name].append((time.perf_counter() - t0) / args.steps)
    print(f"round {r + 1}: " + "; ".join(f"{k} {', '.join(f'{t:.3f}' for t in v[-len(cli):])}" for k, v in times.items())
          + " s/step", flush=True)
  c, b, k = (statistics.median(times[m]) for m in ("cli", "bench", "packed"))
  tokens = train_throughput.tokens_per_step(p)
  print(f"T5 v1.1 d_model {p.d_model}, {p.layers}+{p.layers} layers, batch {p.batch} x {p.inputs}/{p.targets}, "
        f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}")
  print(f"flan-jax train {c:.3f} s/step ({tokens / c:,.0f} tok/s of the shape); benchmark loop {b:.3f} s/step "
        f"({tokens / b:,.0f} tok/s); benchmark loop on a packed batch {k:.3f} s/step")
  print(f"the command runs at {b / c:.1%} of the benchmark's speed ({k / c:.1%} of the same loop on its own "
        f"packed batch: what the command adds; {b / k:.1%}: what packed attention costs)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
