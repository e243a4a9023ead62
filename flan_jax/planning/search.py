"""`flan-jax plan --search`: the parallelism settings a recipe allows on a slice, ranked.

Candidates: every mesh (data x fsdp x model) with a power-of-two `model` axis that
divides the heads, MLP and vocabulary, parameters either FSDP-sharded or replicated
(`MeshConfig.fsdp`), each remat policy, and the microbatch counts whose microbatches
still split over the data-parallel size. Each is planned analytically
(`flan_jax.planning.plan.Planner`) and given an analytic step time (below); those that fit
are ranked by it, and the best few are compiled for the real slice. The winner is
printed as gin overrides to paste after the recipe.

Analytic step time: max(compute, ICI), compute = model FLOPs x remat recompute at
peak FLOP/s, ICI = FSDP weight gathers (per microbatch, again for remat) and gradient
reduce-scatters, the data-parallel gradient all-reduce, and the tensor-parallel
activation all-reduces (two per layer forward, two backward), over ring traffic.
"""
from __future__ import annotations

import copy
import dataclasses
import math

from flan_jax import models
from flan_jax.planning import plan
from flan_jax.training import flops
from flan_jax.runtime import gin_utils
from flan_jax.core import partitioning
from flan_jax.planning import compiled, topology

REMAT_RECOMPUTE = {"none": 1.0, "dots": 1.0, "dots_with_no_batch_dims": 1.1, "full": 4 / 3}


@dataclasses.dataclass
class Candidate:
  model_parallel: int
  fsdp: bool
  remat: str
  microbatches: int
  analytic: plan.Plan | None = None
  step_seconds: float = math.inf
  compiled: compiled.CompiledPlan | None = None
  compile_error: str = ""

  def overrides(self) -> list[str]:
    return [f"--gin.MeshConfig.model_parallel={self.model_parallel}", f"--gin.MeshConfig.fsdp={self.fsdp}",
            "--gin.MeshConfig.fsdp_size=-1", "--gin.MeshConfig.data_size=-1", "--gin.MeshConfig.num_partitions=None",
            f"--gin.REMAT_POLICY={self.remat}", f"--gin.NUM_MICROBATCHES={self.microbatches}"]

  def label(self) -> str:
    return f"model={self.model_parallel:<3} {'fsdp' if self.fsdp else 'data':<5} {self.remat:<24} micro={self.microbatches}"


def _model_axis_sizes(cfg, per_slice: int) -> list[int]:
  dims = [cfg.num_heads, cfg.mlp_dim, cfg.vocab_size]
  return [m for m in (2 ** i for i in range(0, 11)) if m <= per_slice and per_slice % m == 0
          and all(d % m == 0 for d in dims)]


def analytic_step_seconds(p: plan.Plan, sl: topology.Topology) -> float:
  r, cfg, mesh = p.recipe, p.recipe.model_config, p.mesh_shape
  chip = sl.chip
  n = mesh["data"] * mesh["fsdp"] * mesh["model"]
  compute = p.step_flops * REMAT_RECOMPUTE[cfg.remat_policy] / (n * sl.peak_flops_per_chip)
  params = flops.param_count(cfg)
  ring = lambda k: (k - 1) / k if k > 1 else 0.0
  shard = params / mesh["model"]
  gathers = 3 if cfg.remat_policy == "full" else 2
  traffic = r.num_microbatches * gathers * 2 * shard * ring(mesh["fsdp"])   # bf16 weight all-gathers
  traffic += r.num_microbatches * 4 * shard * ring(mesh["fsdp"])            # f32 gradient reduce-scatter
  traffic += 2 * 4 * shard / mesh["fsdp"] * ring(mesh["data"])              # f32 gradient all-reduce
  layers = models.family_for(cfg).activation_layout(cfg, r.input_length, r.target_length).num_layers
  tokens = r.batch_size * (r.input_length + r.target_length) / (mesh["data"] * mesh["fsdp"])
  traffic += layers * 4 * 2 * tokens * cfg.emb_dim * 2 * ring(mesh["model"])  # activation all-reduces
  return max(compute, traffic / chip.ici_bytes_per_s)


def candidates(planner: plan.Planner, sl: topology.Topology) -> list[Candidate]:
  """Every allowed setting on TPU slice `sl` (all of its slices), planned analytically."""
  r = planner.recipe
  per_slice = sl.num_devices // r.mesh_config.num_slices
  out = []
  for mp in _model_axis_sizes(r.model_config, per_slice):
    for fsdp in (True, False):
      for remat in ("full", "dots_with_no_batch_dims", "dots", "none"):
        for micro in (1, 2, 4, 8, 16):
          mc = partitioning.MeshConfig(model_parallel=mp, fsdp=fsdp, num_slices=r.mesh_config.num_slices)
          dp = sl.num_devices // mp
          if r.batch_size % micro or (r.batch_size // micro) % dp:
            continue
          variant = dataclasses.replace(
              r, mesh_config=mc, num_microbatches=micro,
              model_config=dataclasses.replace(r.model_config, remat_policy=remat))
          p = copy.copy(planner)
          p.recipe = variant
          c = Candidate(mp, fsdp, remat, micro)
          try:
            c.analytic = p.plan(sl)
          except ValueError:
            continue
          c.step_seconds = analytic_step_seconds(c.analytic, sl)
          out.append(c)
  # Fitting first (with 5% margin for what the estimate misses), then fastest, then least memory.
  out.sort(key=lambda c: (c.analytic.total > 0.95 * c.analytic.hbm, c.step_seconds, c.analytic.total))
  return out


def search(files, bindings, topology_name: str, num_slices: int = 1, compile_top: int = 2,
           say=print, effort: str = "full") -> tuple[list[Candidate], Candidate | None]:
  """Analytic ranking of every allowed setting, then the best `compile_top` compiled.
  Returns (candidates, the best compiled setting that fits or None)."""
  sl = topology.parse_compilable(topology_name)
  base = plan.recipe_from_gin(files, bindings)
  if num_slices != base.mesh_config.num_slices:
    base = dataclasses.replace(base, mesh_config=dataclasses.replace(base.mesh_config, num_slices=num_slices))
  planner = plan.Planner(base)
  cands = candidates(planner, sl.with_size(sl.size * num_slices))
  say(f"search     {len(cands)} settings planned analytically; compiling the best {compile_top} that fit")
  best = None
  compiled_count = 0
  for c in cands:
    if compiled_count >= compile_top or c.analytic.total > c.analytic.hbm:
      break
    compiled_count += 1
    recipe = plan.recipe_from_gin(files, list(bindings) + gin_utils.split_gin_args(c.overrides())[1])
    try:
      c.compiled = compiled.compile_recipe(recipe, sl, num_slices, effort=effort)
    except compiled.CompilerOutOfMemory as e:
      c.compile_error = e.message.splitlines()[0]
    say(f"  compiled {c.label()}: " + (f"peak {c.compiled.peak / compiled.GiB:.2f} GiB, roofline "
                                       f"{c.compiled.roofline()['step']:.3f} s/step" if c.compiled
                                       else f"refused: {c.compile_error}"))
    if c.compiled and c.compiled.fits and (best is None or c.compiled.roofline()["step"] <
                                           best.compiled.roofline()["step"]):
      best = c
  return cands, best


def format_search(cands: list[Candidate], best: Candidate | None, files, limit: int = 15) -> str:
  lines = [f"{'setting':<52}{'analytic GiB':>13}{'est. s/step':>12}{'compiled GiB':>14}{'roofline s':>11}",
           "(est. s/step: analytic compute and ICI time, no HBM term; roofline s: the compiled program's, with "
           "HBM traffic read from its HLO)"]
  for c in cands[:limit]:
    comp = (f"{c.compiled.peak / compiled.GiB:14.2f}{c.compiled.roofline()['step']:11.3f}" if c.compiled
            else f"{'refused':>14}{'':>11}" if c.compile_error else "")
    lines.append(f"{c.label():<52}{c.analytic.total / compiled.GiB:13.2f}{c.step_seconds:12.3f}{comp}")
  if len(cands) > limit:
    lines.append(f"... {len(cands) - limit} more settings")
  if not any(c.compiled or c.compile_error for c in cands):
    lines.append("nothing compiled (--compile_top 0): the ranking above is analytic only")
  elif best is None:
    lines.append("no compiled setting fits; try a bigger slice")
  else:
    lines.append(f"best       {best.label()}: compiler peak {best.compiled.peak / compiled.GiB:.2f} GiB, "
                 f"MFU <= {best.compiled.mfu:.0%} (roofline)")
    lines.append("paste:     " + " ".join(f"--gin_file={f}" for f in files) + " " + " ".join(best.overrides()))
  return "\n".join(lines)
