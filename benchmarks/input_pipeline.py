"""Does the input pipeline stall the train step? Real data against the same step on a fixed batch.

The quickstart's run (gin/recipes/quickstart.gin: tiny T5 v1.1, the embedded mixture packed to
256/64, batch 16, Adafactor) timed three ways in alternating rounds of --steps steps:
  fixed     the same global batch every step (no input pipeline at all);
  real      the pipeline read in the loop: next seqio batch, then `trainer.global_batch`, then the step;
  ahead     as `flan-jax train` reads: `data.ReadAhead` (batches read in a background thread up to
            64 steps ahead), then `trainer.global_batch` in the loop.
Prints the median seconds per step of each and how much slower than `fixed` the other two are.

    python benchmarks/input_pipeline.py [--steps 20] [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import presets  # noqa: F401  (sys.path and environment first)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--batch", type=int, default=16)
  args = parser.parse_args(argv)
  from flan_jax.runtime import host_memory
  host_memory.retain_freed_memory_on_cpu()
  import jax
  from flan_jax.tasks import lookup
  from flan_jax.training import data, trainer
  from flan_jax.core import optim, partitioning
  from flan_jax.models import t5
  lookup.import_task_modules(["flan_jax.tasks.embedded"])
  lengths = {"inputs": 256, "targets": 64}
  cfg = t5.T5Config(vocab_size=2048, emb_dim=128, mlp_dim=256, num_heads=4, num_encoder_layers=2,
                    num_decoder_layers=2, head_dim=32)  # gin/models/t5_1_1/tiny.gin, quickstart's vocabulary
  real = data.BatchIterator("flan_jax_embedded", lengths, args.batch)
  ahead = data.ReadAhead(data.pipeline_from(data.BatchIterator("flan_jax_embedded", lengths, args.batch, seed=2)),
                         0, depth=64)
  mesh = partitioning.make_mesh(partitioning.MeshConfig(), jax.devices()[:1])
  tx, lr = optim.make_optimizer(optim.OptimizerConfig(learning_rate=3e-3), total_steps=1)
  tr = trainer.Trainer(t5.Transformer(cfg), tx, mesh, real.global_shapes(), learning_rate_fn=lr)
  fixed_batch = trainer.global_batch(next(real), tr.batch_shardings)
  carry = {"state": tr.init_state(0)}

  def fixed():
    return fixed_batch

  def from_pipeline():
    local = next(real)
    data.non_padding_tokens(local)  # what train.py's logger counts
    return trainer.global_batch(local, tr.batch_shardings)

  def read_ahead():
    local = next(ahead)
    data.non_padding_tokens(local)
    return trainer.global_batch(local, tr.batch_shardings)

  modes = {"fixed": fixed, "real": from_pipeline, "ahead": read_ahead}

  def run(get, n):
    state = carry["state"]
    for _ in range(n):
      state, metrics = tr.step(state, get())
    carry["state"] = state
    jax.block_until_ready(metrics)

  for get in modes.values():
    run(get, 2)  # compile; start the pipelines
  times = {m: [] for m in modes}
  for _ in range(args.rounds):
    for m, get in modes.items():
      t0 = time.perf_counter()
      run(get, args.steps)
      times[m].append((time.perf_counter() - t0) / args.steps)
  ahead.close()
  base = statistics.median(times["fixed"])
  import os
  print(f"quickstart step (tiny T5, batch {args.batch} x 256/64 packed), {os.cpu_count()} CPU cores "
        f"(load {os.getloadavg()[0]:.1f}), median of {args.rounds} alternating rounds of {args.steps} steps")
  for m in modes:
    s = statistics.median(times[m])
    print(f"{m:<9} {s * 1e3:8.1f} ms/step  ({s / base - 1:+.1%} vs fixed; rounds: "
          f"{', '.join(f'{t * 1e3:.1f}' for t in times[m])} ms)", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
