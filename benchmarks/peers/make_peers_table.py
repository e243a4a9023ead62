"""Writes docs/peers.md: flan_jax's train steps beside T5X's and MaxText's, all compiled by the
same XLA:TPU (libtpu, no TPU) and counted by the same HLO counter in one run.

    python benchmarks/peers/make_peers_table.py --figures /tmp/peers   # after the peer scripts

reads the peers' figures from --figures (`t5x_<remat>.json` written by `t5x_compile.py --out`,
`maxtext_<recipe>_<opt>.fig.json` written by `count_hlo.py --out`), compiles flan_jax's rows
itself (`planning.compiled.compile_recipe`, the trainer's own program; cached in the same folder
as `flan_jax_<row>.json`, so a rerun reuses them unless --recompile), and writes the table.
Needs libtpu (pip install -e ".[tpu]"). Not run in CI.
"""
from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import count_hlo  # noqa: E402

GiB = 2.0 ** 30
# flan_jax's rows: (name, recipe, extra gin bindings, what the row is).
FLAN_ROWS = [
    ("xxl", "flan_t5_xxl", [], "recipe: remat full, flash attention"),
    ("xxl_xla", "flan_t5_xxl", ["T5Config.attention_kernel = 'xla'"], "remat full, XLA attention"),
    ("62b", "flan_palm_62b", [], "recipe: remat dots_with_no_batch_dims, 4 microbatches, flash attention"),
    ("62b_full", "flan_palm_62b", ["REMAT_POLICY = 'full'", "NUM_MICROBATCHES = 1"],
     "remat full, 1 microbatch, flash attention"),
    ("62b_full_xla", "flan_palm_62b", ["REMAT_POLICY = 'full'", "NUM_MICROBATCHES = 1",
                                       "PaLMConfig.attention_kernel = 'xla'"], "remat full, 1 microbatch, XLA attention"),
    ("8b", "flan_palm_8b", [], "recipe: remat full, flash attention"),
]


def flan_row(name: str, recipe_name: str, bindings: list[str], what: str, folder: pathlib.Path,
             recompile: bool) -> dict:
  path = folder / f"flan_jax_{name}.json"
  if path.exists() and not recompile:
    return json.loads(path.read_text())
  from flan_jax.planning import compiled, plan, topology
  recipe = plan.recipe_from_gin([str(ROOT / "gin" / "recipes" / f"{recipe_name}.gin")], bindings)
  cp = compiled.compile_recipe(recipe, topology.parse_compilable(recipe.topology), loss=recipe.loss)
  row = count_hlo.summary("flan_jax", f"{recipe_name}: {what}", cp)
  path.write_text(json.dumps(row, indent=1))
  return row


def _fig(r: dict | None) -> str:
  if r is None:
    return "not measured"
  rl = r["roofline_s"]
  bound = max(("compute", "hbm", "ici"), key=rl.__getitem__)
  return (f"{r['peak_gib']:.2f} GiB, HBM {r['hbm_traffic_gib']:,.0f} GiB, ICI {r['collective_traffic_gib']:,.0f} GiB, "
          f"**{rl['step']:.3f} s** ({bound}-bound, MFU ≤ {r['mfu']:.0%})")


def markdown(flan: dict, peers: dict) -> str:
  t5x_full, t5x_min = peers.get("t5x_full"), peers.get("t5x_minimal")
  mt = {k: peers.get(f"maxtext_{k}") for k in ("flan_palm_62b_adamw", "flan_palm_62b_sgd", "flan_palm_8b_adamw",
                                                 "flan_palm_8b_sgd")}
  ratio = lambda a, b, key: (a[key] / b[key]) if a and b else float("nan")
  step = lambda a, b: (a["roofline_s"]["step"] / b["roofline_s"]["step"]) if a and b else float("nan")
  lines = [
      "# flan_jax beside T5X and MaxText on the same compiler",
      "",
      f"One run ({datetime.date.today()}), `python benchmarks/peers/make_peers_table.py`: every train step below was "
      "compiled by XLA:TPU (libtpu 0.0.42.1, no TPU) for the same slice, batch and lengths, and counted by "
      "flan_jax's HLO counter (`flan_jax.planning.hlo`: loops multiplied out, HBM bytes of every top-level "
      "instruction, a Pallas kernel priced by its cost estimate, collective ring traffic) and roofline "
      "(`planning.compiled.CompiledPlan`). Per chip: compiled peak memory, HBM traffic and ICI traffic per "
      "step, and the roofline step time (the largest of compute at peak FLOP/s, HBM traffic at HBM bandwidth "
      "and ICI traffic at ICI bandwidth; an upper bound on speed, not a measurement). MFU bounds use the "
      "same model FLOPs for every column (`flan_jax.training.flops`).",
      "",
      "| recipe / slice | flan_jax | T5X (cc342d4) | MaxText (e591f30) | flan_jax vs best peer |",
      "|---|---|---|---|---|",
      f"| Flan-T5-XXL, v4-128, 64 × (2048 + 512), Adafactor, fsdp 8 × model 8 | remat full (the recipe): "
      f"{_fig(flan.get('xxl'))}; with XLA attention: {_fig(flan.get('xxl_xla'))} | remat full: {_fig(t5x_full)}; "
      f"remat minimal: {_fig(t5x_min)} | — (no T5) | {ratio(flan.get('xxl'), t5x_full, 'peak_gib'):.2f}× memory, "
      f"**{step(flan.get('xxl'), t5x_full):.2f}× step** (vs T5X remat full) |",
      f"| Flan-PaLM 62B, v4-128, 32 × 2560, fsdp 8 × model 8 | the recipe (Adafactor, remat dots_with_no_batch_dims, "
      f"4 microbatches): {_fig(flan.get('62b'))}; remat full, 1 microbatch: {_fig(flan.get('62b_full'))}; the same "
      f"with XLA attention: {_fig(flan.get('62b_full_xla'))} | — | remat full, 1 microbatch: AdamW {_fig(mt['flan_palm_62b_adamw'])}; "
      f"SGD {_fig(mt['flan_palm_62b_sgd'])} | recipe: {ratio(flan.get('62b'), mt['flan_palm_62b_adamw'], 'peak_gib'):.2f}× "
      f"MaxText AdamW's memory, **{step(flan.get('62b'), mt['flan_palm_62b_adamw']):.2f}× step**; remat full: "
      f"{ratio(flan.get('62b_full'), mt['flan_palm_62b_sgd'], 'peak_gib'):.2f}× MaxText SGD's memory, "
      f"{step(flan.get('62b_full'), mt['flan_palm_62b_sgd']):.2f}× step |",
      f"| Flan-PaLM 8B, v4-64, 32 × 2560, fsdp 8 × model 4, remat full | {_fig(flan.get('8b'))} | — | "
      f"AdamW {_fig(mt['flan_palm_8b_adamw'])}; SGD {_fig(mt['flan_palm_8b_sgd'])} | "
      f"{ratio(flan.get('8b'), mt['flan_palm_8b_sgd'], 'peak_gib'):.2f}× MaxText SGD's memory, "
      f"{step(flan.get('8b'), mt['flan_palm_8b_sgd']):.2f}× step |",
      "",
      "## How each column was made",
      "",
      "- **flan_jax**: `flan-jax plan --compile --gin_file=gin/recipes/<recipe>.gin [--gin.<binding> ...]`, the "
      "trainer's own program at XLA's full effort (this script calls the same `compile_recipe`). On TPU the "
      "attention runs in flan_jax's Pallas flash kernels (`ModelConfig.attention_kernel = 'auto'`); the rows "
      "marked XLA attention bind it to `'xla'`.",
      "- **T5X** at commit cc342d4: `PYTHONPATH=<site> python benchmarks/peers/t5x_compile.py --t5x_dir <t5x> "
      "--remat full|minimal --out <figures>/t5x_<remat>.json`. Its own program: `scalable_t5` and its T5.1.1 XXL "
      "gin file, its Adafactor, `trainer.train_with_lr` partitioned as its `Trainer` does, `PjitPartitioner("
      "num_partitions=8)` with `standard_logical_axis_rules(parameter_partitioning_dims=2)`; batch 64 of "
      "2048 + 512, dropout 0.05, bfloat16. Needed: a stub module for its `airio` import (its data path, unused "
      "here), `jax.experimental.pjit.PartitionSpec` for `jestimator` (moved in current JAX), and its partitioner "
      "given the slice's abstract devices; pip packages `cached_property jaxtyping fiddle wadler_lindig "
      "jestimator tensorboard`.",
      "- **MaxText** at commit e591f30 (Python 3.12): `PYTHONPATH=<maxtext>/src python3.12 "
      "benchmarks/peers/maxtext_compile.py --recipe flan_palm_62b --opt adamw|sgd --out <figures>/maxtext_flan_palm_62b_<opt>`, "
      "then `python benchmarks/peers/count_hlo.py <that prefix> --out <prefix>.fig.json`. Its own "
      "`train_compile.py` with flan_jax's PaLM dimensions (one key/value head, SwiGLU, RoPE, tied embeddings, "
      "256k vocabulary), the recipe's batch, length, slice and fsdp × tensor mesh. Needed: "
      "`allow_split_physical_axes=True`; logical rules that leave the single key/value head unsharded "
      "(`kv_heads`, `activation_kv_heads`); `attention=dot_product`, because its Pallas attention shards "
      "key/value heads over the tensor axis, which one head cannot fill. Its decoder block is its `llama2` "
      "(attention, then MLP; PaLM's are parallel: the same matmuls). Its Adafactor did not compile; AdamW "
      "and SGD did. With remat `minimal` in 4 microbatches (its nearest to the 62B recipe) MaxText needs "
      "36.97 GiB of temporaries with AdamW, over v4's 30.75 GiB, so its rows are remat full in one batch.",
      "",
      "Like with like: flan_jax's Adafactor keeps factored second moments, lighter than AdamW's two full "
      "moments and heavier than SGD's none; the memory ratios name the peer optimizer they compare with.",
      "",
      "The MFU bound of a causal model counts its attention FLOPs in full (`flan_jax.training.flops`), while "
      "the flash kernels skip the key blocks above the diagonal; a bound near 100% is that, not a model that "
      "runs at peak.",
      "",
      "No GPU figure (tokens/s, MFU against transformers) exists: no GPU machine has been lent to the project.",
      "",
      "## Largest HBM traffic per step and chip (GiB)",
      "",
  ]
  for label, r in [("flan_jax, Flan-T5-XXL", flan.get("xxl")), ("T5X remat full, XXL", t5x_full),
                   ("flan_jax, Flan-PaLM 62B (recipe)", flan.get("62b")),
                   ("MaxText AdamW, 62B", mt["flan_palm_62b_adamw"])]:
    if r:
      lines.append(f"- {label}: " + "; ".join(f"{src} {b:.1f}" for src, b in r["top_traffic"][:6]))
  return "\n".join(lines) + "\n"


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--figures", required=True, help="folder of the peers' figure JSONs (and flan_jax's cache)")
  p.add_argument("--recompile", action="store_true", help="compile flan_jax's rows even if cached")
  p.add_argument("--out", default=str(ROOT / "docs" / "peers.md"))
  args = p.parse_args(argv)
  folder = pathlib.Path(args.figures)
  flan = {name: flan_row(name, recipe, bindings, what, folder, args.recompile)
          for name, recipe, bindings, what in FLAN_ROWS}
  peers = {}
  for f in folder.glob("*.json"):
    if f.name.startswith("t5x_"):
      peers[f.stem] = json.loads(f.read_text())
    elif f.name.startswith("maxtext_") and f.name.endswith(".fig.json"):
      peers[f.name[:-len(".fig.json")]] = json.loads(f.read_text())
  pathlib.Path(args.out).write_text(markdown(flan, peers))
  print(f"wrote {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
