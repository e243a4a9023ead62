"""Writes docs/plans.md: every paper recipe compiled by XLA:TPU for its paper slice.

    python scripts/make_plans_table.py            # all rows (slow: each compile runs on this CPU)
    python scripts/make_plans_table.py --only flan_t5_small flan_palm_540b@v4-512

Each row runs in its own process (`--row`), so its compile time and peak host memory
(wait4's maxrss) are its own; finished rows are cached in --cache and reused, so an
interrupted run resumes. Needs libtpu (pip install -e ".[tpu]").
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
RECIPES = ["flan_palm_540b", "flan_palm_540b@v4-512", "flan_palm_62b", "flan_palm_8b", "flan_t5_small",
           "flan_t5_base", "flan_t5_large", "flan_t5_xl", "flan_t5_xxl"]
ORDER = ["flan_t5_small", "flan_t5_base", "flan_t5_large", "flan_t5_xl", "flan_t5_xxl", "flan_palm_8b",
         "flan_palm_62b", "flan_palm_540b", "flan_palm_540b@v4-512"]
GiB = 2.0 ** 30


def analytic_row(spec: str) -> dict:
  """`flan-jax plan`'s estimate for one recipe[@slice] (fast; recomputed on every table build)."""
  from flan_jax.planning import plan
  from flan_jax.planning import topology
  name, _, topo = spec.partition("@")
  recipe = plan.recipe_from_gin([f"gin/recipes/{name}.gin"])
  topo = topo or recipe.topology
  analytic = plan.Planner(recipe).plan(plan.parse_topology(topo))
  return {"recipe": name, "topology": topo, "mesh": analytic.mesh_shape, "analytic_gib": analytic.total / GiB,
          "analytic_breakdown_gib": {k: getattr(analytic, k) / GiB for k in
                                     ("params", "optimizer", "gradients", "activations", "transient")},
          "hbm_gib": topology.parse_compilable(topo).hbm_gib_per_chip}


def row(spec: str, effort: str = "full") -> dict:
  """Analytic and compiled figures of one recipe[@slice] (in this process)."""
  from flan_jax.planning import plan
  from flan_jax.planning import compiled, topology
  out = analytic_row(spec)
  out["effort"] = effort
  recipe = plan.recipe_from_gin([f"gin/recipes/{out['recipe']}.gin"])
  topo = out["topology"]
  loss = recipe.loss
  t0 = time.perf_counter()
  try:
    c = compiled.compile_recipe(recipe, topology.parse_compilable(topo), loss=loss, effort=effort)
  except compiled.CompilerOutOfMemory as e:
    out.update(refused=e.message.splitlines()[0], compile_s=time.perf_counter() - t0)
    return out
  rl = c.roofline()
  out.update(peak_gib=c.peak / GiB, arguments_gib=c.arguments / GiB, temp_gib=c.temp / GiB,
             step_flops=c.step_flops, model_flops=c.model_flops,
             collective_gib=c.stats.collective_bytes / GiB,
             collectives={k: [v.count, v.bytes / GiB] for k, v in c.stats.collectives.items() if v.count},
             roofline=rl, mfu=c.mfu, compile_s=c.compile_seconds, fits=c.fits)
  return out


def markdown(rows: list[dict]) -> str:
  lines = [
      "# Plans from the compiler",
      "",
      "Every paper recipe's train step, the one `flan_jax.training.trainer.Trainer` runs, compiled by XLA:TPU (libtpu, "
      "no TPU) for the recipe's paper slice; made by `python scripts/make_plans_table.py` "
      f"({datetime.date.today()}), beside `flan-jax plan`'s analytic estimate.",
      "",
      "| recipe | slice | mesh (data×fsdp×model) | compiled peak GiB/chip | analytic GiB/chip | analytic vs compiled "
      "| HBM GiB | FLOPs/step (HLO, with remat) | collective GiB/step/chip | roofline s/step | bound by | est. MFU | "
      "compile s | host GiB | XLA effort |",
      "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
  ]
  for r in rows:
    mesh = "×".join(str(r["mesh"][a]) for a in ("data", "fsdp", "model"))
    host = f"{r['host_gib']:.1f}" if "host_gib" in r else ""
    effort = r.get("effort", "")
    if r.get("missing"):
      lines.append(f"| {r['recipe']} | {r['topology']} | {mesh} | not compiled yet: run the script | "
                   f"{r['analytic_gib']:.2f} | | {r['hbm_gib']:.0f} | | | | | | | | |")
      continue
    if "timeout_s" in r:
      lines.append(f"| {r['recipe']} | {r['topology']} | {mesh} | not compiled: over {r['timeout_s'] / 60:.0f} min "
                   f"here | {r['analytic_gib']:.2f} | | {r['hbm_gib']:.0f} | | | | | | >{r['timeout_s']:.0f} | {host} | {effort} |")
      continue
    if "refused" in r:
      lines.append(f"| {r['recipe']} | {r['topology']} | {mesh} | **refused by XLA**: {r['refused'].replace('RESOURCE_EXHAUSTED: ', '')} | "
                   f"{r['analytic_gib']:.1f} | {r['analytic_gib'] / _refused_gib(r['refused']) - 1:+.0%} vs XLA's need | "
                   f"{r['hbm_gib']:.0f} | | | | | | {r['compile_s']:.0f} | {host} | {effort} |")
      continue
    lines.append(
        f"| {r['recipe']} | {r['topology']} | {mesh} | {r['peak_gib']:.2f} | {r['analytic_gib']:.2f} | "
        f"{r['analytic_gib'] / r['peak_gib'] - 1:+.0%} | {r['hbm_gib']:.0f} | {r['step_flops']:.3g} | "
        f"{r['collective_gib']:.1f} | {r['roofline']['step']:.2f} | {_bound(r['roofline'])} | {r['mfu']:.0%} | "
        f"{r['compile_s']:.0f} | {host} | {effort} |")
  lines += [
      "",
      "The residual stream. Every model shards the residual stream between layers (the layer outputs a "
      "rematerialised stack keeps for the backward pass) over the `model` axis as well as the batch "
      "(`ModelConfig.shard_residual`, logical axis `residual_embed`; MaxText's logical rules do the same): "
      "each chip keeps 1/model of it, and the all-reduce after a tensor-parallel layer becomes a "
      "reduce-scatter with an all-gather at the next layer's input, the same bytes. Before "
      "(2026-11-29, this table's compiler): Flan-T5-XXL 6.90 GiB/chip, 1,156 GiB HBM traffic, 1.034 s; Flan-PaLM "
      "8B 8.50 GiB, 0.638 s; 62B 22.59 GiB, 2.260 s (full remat); 540B 21.63 GiB, 2.40 s. The rows above are "
      "with it; rows without a `model` axis are unchanged. Flan-PaLM 62B then also stops recomputing its "
      "matmuls: its recipe saves their outputs (remat `dots_with_no_batch_dims`) in 4 microbatches of 8 "
      "(full remat with the sharded residual: 12.53 GiB, 2.208 s).",
      "",
      "Attention in Pallas kernels. On TPU every row runs attention in flan_jax's flash kernels "
      "(`flan_jax/models/flash_attention.py`; `ModelConfig.attention_kernel = 'auto'`): no [B, H, L, S] score, "
      "probability or mask buffer reaches HBM; T5's relative-position bias is one [H, L, S] slice shared by the "
      "batch, and its gradient is summed over the batch inside the kernel. With XLA attention "
      "(`--gin.T5Config.attention_kernel=\"'xla'\"`, the figures of 2026-12-06 before the kernels, HBM counted "
      "as then): Flan-T5-small 16.93 GiB, 0.20 s, est. MFU 8%; base 4.11 GiB, 0.30 s, 22%; large 2.68 GiB, "
      "0.53 s, 20%; XL 3.28 GiB, 0.54 s, 33%; XXL 3.87 GiB, 0.78 s, 42%. The PaLM rows change little: "
      "they are compute-bound, and a causal multi-query model's scores were a small part of their traffic.",
      "",
      "How a kernel is counted. A Pallas kernel is a custom call XLA cannot see into; each of the three "
      "(forward, dq with the bias gradient, dk/dv) attaches a `pl.CostEstimate`: the FLOPs of the blocks it "
      "computes (two, three and four matmuls per visited block pair; causal kernels skip the pairs above the "
      "diagonal) and the HBM bytes its pipeline moves: every input block fetched again whenever its block index "
      "changes between consecutive grid steps (the whole K and V of a head per query block and batch row, the "
      "bias slice once per head and query block), every output written once, the row statistics as float32 "
      "[rows, 128]. XLA's `cost_analysis()` and `flan_jax.planning.hlo` read the estimate from the call's "
      "backend config; the HLO counter prices the call at those bytes and FLOPs.",
      "",
      "Async copies and slices are counted as the bytes they move: a slice reads only what it keeps, and a "
      "result placed on chip (`S(n)`) writes no HBM. Before, the counter charged an async slice twice its "
      "whole source (Flan-T5-XXL: 215 GiB of its 697 GiB per step were such slices; 27 GiB now), so HBM "
      "figures of earlier tables are not comparable with these.",
      "",
      "What bounds the T5 rows: HBM traffic, still; with the kernels their est. MFU is 40-75% except "
      "Flan-T5-small (25%, 76 GiB per step and chip). Its largest sources are now the kernels themselves: "
      "the dk/dv kernel reads a head's whole queries, outputs, output gradients and float32 row statistics "
      "([rows, 128]) once per 256-key block (9.6 GiB, 13%), the dq kernel 6.0 GiB and the forward 5.1 GiB; "
      "then the MLP's backward (wo 6.6 GiB). Keeping the row statistics as [1, rows] and handing the "
      "dq kernel's row sums to the dk/dv kernel would cut that kernel's reads about threefold; not done.",
      "",
      "Columns: *compiled peak* is `compiled.memory_analysis().peak_memory_in_bytes`, the figure XLA checks "
      "against HBM; *analytic* is `flan-jax plan`'s total. FLOPs are read from the optimised HLO with every loop "
      "(scanned layers, microbatches, collective-matmul windows) multiplied by its trip count (XLA's "
      "`cost_analysis()` counts a loop body once); they include rematerialisation. Collective bytes are the "
      "per-chip sizes of all-gather / reduce-scatter / all-reduce / all-to-all / collective-permute results per "
      "step. *Roofline s/step* is the largest of compute at peak bf16 FLOP/s, HBM traffic at HBM bandwidth and "
      "collective ring traffic at ICI bandwidth, and *bound by* names which of the three it is; *est. MFU* is model FLOPs (6N + attention, no remat) over peak "
      "x that time: an upper bound, not a measurement. *compile s* and *host GiB* were measured on the machine "
      "that made the table (a shared 2-core VM under load, so slower than an idle one).",
      "",
      "*XLA effort*: every row is the trainer's own program at XLA's default speed effort (`full`). "
      "`flan-jax plan --compile --compile_effort=fast` compiles at speed effort -1 "
      "(`planning.compiled.COMPILE_EFFORT`): about 2x quicker, but scheduled differently, so its peak is not "
      "exactly the trainer's (T5-small/v4-8: +0.7%; 540B/v4-1024: 19.95 vs 21.63 GiB, -7.8%).",
      "",
      "Calibration (`flan_jax.planning.plan.activation_bytes`): XLA never holds the logits phase and a layer's backward "
      "together, so the analytic transient is the larger of the two, not their sum; the loss phase is one "
      "[tokens, vocab] buffer in the dtype the model emits logits (the fp32 upcast, softmax and z-loss are "
      "fused, and the logits' gradient is written over them); the fp32 softmax is counted in bytes, not as two "
      "activation elements. Before this the planner was +66% on Flan-PaLM 8B, +55% on Flan-T5-small, +25% / "
      "+96% on the tiny T5 / decoder of `tests/test_plan_compile.py` (against speed-effort -1 compiles); that "
      "test now checks the 15% band against the trainer's own compile (tiny T5 +4%).",
      "",
      "Flan-T5 and the relative-position bias. T5-small shapes, inputs 2048 / targets 512, 2 "
      "sequences per v4-8 chip, remat `full`, speed effort -1, 1 / 2 / 4 layers per stack: peak 2.38 / 2.32 / "
      "2.36 GiB before. XLA's buffer report named the cause: the bias lookup `take(table[H, buckets], "
      "buckets[L, S])` and its scatter gradient put the heads axis minor-most (f32[2048, 2048, 6], "
      "f32[4194304, 6]), which XLA:TPU pads to 128 lanes: two 2.00 GiB buffers for 96 MiB of data. And the "
      "[B, H, L, L] bias built once per stack and passed to every layer left one bias-gradient of that size "
      "per layer live in the backward pass. T5X does neither: each layer builds the shared table's bias, "
      "by a bucket-major one-hot [buckets, L, S] contracted with the table (no gather). flan_jax now does "
      "the same (`layers.relative_bias`, built inside each remat'd layer from the table and the segment ids): "
      "0.64 / 0.80 / 0.88 GiB. Training numbers: the loss and every gradient are bit-equal on CPU except the "
      "two relative-position tables' gradients (float32 summation order, 5e-7 relative). Flan-T5-base on "
      "v4-16: 29.84 GiB before, 4.95 GiB after (unrolled layers, speed effort -1). The fix costs data-parallel "
      "traffic: each encoder layer's bias gradient [H, 2048, 2048] is all-reduced before its contraction "
      "with the one-hot (Flan-T5-large: 6.4 of the 11.5 GiB per step and chip), which the roofline prices at "
      "under a tenth of the step. Every T5 row is bound by HBM traffic, hence its low MFU bound: `flan-jax "
      "plan --compile` lists the largest sources. For Flan-T5-base (330 GiB per step and chip) they are "
      "the stacked layers' async slices (15%), the encoder's [8, 12, 2048, 2048] attention buffers (the two "
      "score matmuls' backward, 11% and 9%; the softmax's backward, 8%) and the bias gradient's sum over the "
      "batch (6%); the one-hot contraction itself is under 2%.",
      "",
      "Flan-T5 and scanned stacks. The paper's Flan-T5 recipes set `SCAN_LAYERS = True`: each "
      "stack is one `nn.scan` over its layers (T5X scalable_t5's layout, parameters stacked under "
      "`encoder/layers/...`; a converted or unscanned checkpoint is stacked when loaded, "
      "`tests/test_t5_scan.py`). Unrolled, XLA:TPU compiled each layer's code separately: Flan-T5-large on "
      "v4-32 took 1,403 s and 21.4 GB of host memory at speed effort -1 (10.64 GiB/chip), too much for "
      "XL and XXL on this 24 GB machine. Scanned, every Flan-T5 row compiles at full "
      "effort (the trainer's exact program) in about a minute and under 5 GiB of host memory, and all five "
      "fit their paper slices. The estimate's encoder-decoder layer phase counts no activation-dtype copy of "
      "a float32 softmax (XLA fuses that cast into the matmul reading it); before, it was +21% / +10% / +10% / "
      "+18% on base / large / XL / XXL.",
      "",
      "Flan-T5 and bf16 attention logits. T5X's T5 v1.1 network keeps attention logits, bias and "
      "softmax in the activation dtype (`float32_attention_logits = False`, its default, which its T5 v1.1 gin "
      "files keep); flan_jax upcast them to float32 after the dot. T5 now follows T5X "
      "(`T5Config.float32_attention_logits`, tested against T5X's formula re-typed; PaLM keeps float32 "
      "logits). Compiled peaks fell from 20.88 / 4.92 / 3.12 / 3.61 / 7.29 GiB (small ... XXL) to the "
      "figures above, and the roofline's HBM time by 10-21% (base 0.375 -> 0.295 s/step). For such models "
      "the estimate counts two activation-dtype [B, H, L, S] buffers saved for the backward besides the logits "
      "(the probabilities and their dropped-out copy) and one in the layer being recomputed, fitted on these "
      "rows.",
  ]
  return "\n".join(lines) + "\n"


def _bound(roofline: dict) -> str:
  """Which term of the roofline sets the step time: compute, HBM or ICI."""
  name = max(("compute", "hbm", "ici"), key=roofline.__getitem__)
  return {"compute": "compute", "hbm": "HBM traffic", "ici": "ICI traffic"}[name]


def _refused_gib(message: str) -> float:
  """The size XLA said the program needs ('... temporaries (43.57G) exceeds ...'), in GiB."""
  import re
  m = re.search(r"\(([0-9.]+)G\) exceeds", message)
  return float(m.group(1)) if m else float("nan")


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--row", help=argparse.SUPPRESS)
  p.add_argument("--effort", choices=("full", "fast"), default="full",
                 help="XLA's speed effort for the compiles (planning.compiled.COMPILE_EFFORT)")
  p.add_argument("--only", nargs="*", default=None, help="recipes[@slice] to (re)compile; others from the cache")
  p.add_argument("--row_timeout", type=float, default=1800, help="seconds before a row's compile is abandoned")
  p.add_argument("--cache", default=str(ROOT / "docs" / "plans.json"),
                 help="figures of compiled rows (committed; --only recompiles rows and keeps the others)")
  p.add_argument("--out", default=str(ROOT / "docs" / "plans.md"))
  args = p.parse_args()
  os.environ.setdefault("JAX_PLATFORMS", "cpu")  # this process only plans: libtpu must not probe for a TPU
  if args.row:
    sys.path.insert(0, str(ROOT))
    print(json.dumps(row(args.row, args.effort)))
    return 0
  cache = json.loads(pathlib.Path(args.cache).read_text()) if pathlib.Path(args.cache).exists() else {}
  todo = [s for s in RECIPES if (args.only is None and s not in cache) or (args.only and s in args.only)]
  for spec in todo:
    print(f"{spec} ...", flush=True)
    r = run_row_measured(spec, args.row_timeout, args.effort)
    cache[spec] = r
    pathlib.Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.cache).write_text(json.dumps(cache, indent=1))
    print(f"  {r.get('peak_gib', r.get('refused', 'timed out'))} GiB compiled, {r.get('analytic_gib', 0):.2f} "
          f"analytic, {r['compile_s']:.0f} s compile, {r['host_gib']:.2f} GiB host", flush=True)
  sys.path.insert(0, str(ROOT))
  rows = [{**cache.get(s, {"missing": True}), **analytic_row(s)} for s in ORDER]
  pathlib.Path(args.out).write_text(markdown(rows))
  print(f"wrote {args.out} ({len(rows)} rows)")
  return 0


def run_row_measured(spec: str, timeout_s: float, effort: str = "full") -> dict:
  """One row in a child process; its own peak resident memory (wait4); killed after `timeout_s`."""
  import threading
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  t0 = time.perf_counter()
  proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--row", spec, "--effort", effort], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  timer = threading.Timer(timeout_s, proc.kill)
  timer.start()
  out, err = proc.stdout.read(), proc.stderr.read()
  _, status, usage = os.wait4(proc.pid, 0)
  timer.cancel()
  if not timer.is_alive() and time.perf_counter() - t0 >= timeout_s:
    return {"timeout_s": timeout_s, "host_gib": usage.ru_maxrss / 2 ** 20, "compile_s": timeout_s, "effort": effort}
  if status:
    raise RuntimeError(f"{spec}: row failed:\n{err[-3000:]}")
  r = json.loads(out.strip().splitlines()[-1])
  r["wall_s"] = time.perf_counter() - t0
  r["host_gib"] = usage.ru_maxrss / 2 ** 20
  r["cpu_s"] = usage.ru_utime + usage.ru_stime
  return r


if __name__ == "__main__":
  raise SystemExit(main())
