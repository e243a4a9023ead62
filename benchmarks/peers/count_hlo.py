"""Counts a peer's compiled train step with flan_jax's own HLO counter and roofline, as
`flan-jax plan --compile` counts flan_jax's: per-chip peak, HBM traffic, collective traffic,
FLOPs with loops multiplied out, the roofline step time and the MFU bound.

    python benchmarks/peers/count_hlo.py /tmp/maxtext_62b_adamw [--out figures.json]

reads `<prefix>.hlo.txt` (the optimised HLO, `compiled.as_text()`) and `<prefix>.json` (the
peer's recipe, topology, mesh and `memory_analysis()` peak, written by `maxtext_compile.py`).
Model FLOPs are those of the flan_jax recipe of the same name, so MFU bounds compare.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

GiB = 2.0 ** 30


def summary(peer: str, what: str, plan) -> dict:
  """The figures docs/peers.md shows, from a `planning.compiled.CompiledPlan`."""
  rl = plan.roofline()
  return {"peer": peer, "what": what, "topology": plan.slice.name, "mesh": plan.mesh_shape,
          "peak_gib": plan.peak / GiB, "hbm_traffic_gib": plan.stats.bytes_accessed / GiB,
          "collective_traffic_gib": plan.stats.collective_traffic / GiB, "flops_per_chip": plan.stats.flops,
          "roofline_s": rl, "mfu": plan.mfu, "compile_s": plan.compile_seconds,
          "top_traffic": [(src, b / GiB) for src, b in plan.stats.top_traffic(8)]}


def write_figures(figures: dict, out: str | None) -> None:
  """Prints the figures as JSON and, with `out`, writes them there."""
  text = json.dumps(figures, indent=1)
  print(text)
  if out:
    pathlib.Path(out).write_text(text)


def count(prefix: str) -> dict:
  from flan_jax.planning import compiled, hlo, plan, topology
  from flan_jax.training import flops
  meta = json.loads(pathlib.Path(prefix + ".json").read_text())
  sl = topology.parse_compilable(meta["topology"])
  stats = hlo.analyse(pathlib.Path(prefix + ".hlo.txt").read_text(), sl.chips)
  recipe = plan.recipe_from_gin([str(ROOT / "gin" / "recipes" / f"{meta['recipe']}.gin")])
  model_flops = flops.train_step_flops(recipe.model_config, recipe.batch_size, recipe.input_length,
                                       recipe.target_length)
  cp = compiled.CompiledPlan(
      slice=sl, num_slices=1, mesh_shape=meta["mesh"], peak=meta["peak_bytes"], arguments=0.0, outputs=0.0,
      aliased=0.0, temp=0.0, code=0.0, stats=stats, cost_analysis_flops=0.0, model_flops=model_flops,
      compile_seconds=meta["compile_s"])
  return summary(meta["peer"], meta["what"], cp)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("prefix", help="<prefix>.hlo.txt and <prefix>.json, as maxtext_compile.py writes them")
  p.add_argument("--out", default=None)
  args = p.parse_args(argv)
  write_figures(count(args.prefix), args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
