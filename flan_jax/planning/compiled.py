"""`flan-jax plan --compile`: the trainer's own train step, compiled by XLA:TPU for a slice.

The recipe's `trainer.Trainer` is built exactly as `flan_jax.training.train` builds it (model,
Adafactor, loss settings, microbatches, remat, mesh and logical-axis rules), on the
abstract devices of a TPU slice (`planning.tpu`), and its jitted `train_step` is
lowered with abstract inputs (`Trainer.lower_train_step`) and compiled. No arrays
are allocated and no TPU is needed; libtpu is.

The compiler reports per-device memory (`peak_memory_in_bytes` is its fits/does-not-
fit figure) or refuses a program that does not fit ("Ran out of memory in memory
space hbm ..."). FLOPs, collectives and HBM traffic per step are read from the
optimised HLO with loops multiplied out (`planning.hlo`). Step time is a roofline:
the largest of compute at peak FLOP/s, HBM traffic at HBM bandwidth and collective
traffic at ICI bandwidth (DCN for multi-slice is not modelled); real steps are slower.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Sequence

import jax
import jax.numpy as jnp

from flan_jax.runtime import compile_cache
from flan_jax.planning import plan
from flan_jax.training import flops
from flan_jax.core import optim, partitioning
from flan_jax.training import trainer
from flan_jax.models import build_model
from flan_jax.planning import hlo, topology, tpu

GiB = 2.0 ** 30

# How hard XLA:TPU works on the program's speed (jax's `exec_time_optimization_effort`,
# -1..1). 'full' (0, the default) is what the trainer's jit compiles, so the peak is the
# trainer's. Most of an unscanned T5 compile is the TPU backend emitting unrolled code for
# every distinct fusion (per layer, per optimizer leaf), and its cost grows with the
# per-device tokens (T5-small on v4-8, 2 -> 8 sequences per chip: 159 -> 505 s). 'fast'
# (-1) cuts that (T5-small/v4-8: 159 -> 93 s, 540B/v4-1024: 268 -> 133 s) but schedules
# differently, so its peak is not the trainer's: +0.7% on T5-small, -7.8% on 540B
# (19.95 vs 21.63 GiB). Use it for a quick look, not for a booking decision.
COMPILE_EFFORT = {"fast": -1.0, "full": 0.0}

# Features of seqio's packing feature converters (EncDec / PrefixLM / Decoder), all int32;
# tests/test_plan_compile.py checks these against seqio's own get_model_feature_lengths.
_ENC_DEC = ("encoder_input_tokens", "encoder_segment_ids", "encoder_positions", "decoder_target_tokens",
            "decoder_input_tokens", "decoder_loss_weights", "decoder_segment_ids", "decoder_positions")
_DECODER = ("decoder_target_tokens", "decoder_input_tokens", "decoder_loss_weights", "decoder_segment_ids",
            "decoder_positions")


def abstract_batch(recipe: plan.Recipe, converter: str) -> dict[str, jax.ShapeDtypeStruct]:
  """The global batch the data pipeline would feed (packed), as shapes."""
  b = recipe.batch_size
  if converter == "encdec":
    return {k: jax.ShapeDtypeStruct((b, recipe.input_length if k.startswith("encoder") else recipe.target_length),
                                    jnp.int32) for k in _ENC_DEC}
  names = _DECODER + (("decoder_causal_attention",) if converter == "prefix_lm" else ())
  return {k: jax.ShapeDtypeStruct((b, recipe.target_length), jnp.int32) for k in names}


def device_mesh(config: partitioning.MeshConfig, devices: Sequence) -> jax.sharding.Mesh:
  """The recipe's mesh over given devices, laid out along the slice's torus."""
  if config.num_slices > 1:
    return partitioning.make_mesh(config, devices)
  arr = partitioning.hybrid_device_array(devices, config, slice_of=lambda d: 0)
  return jax.sharding.Mesh(arr, partitioning.MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * 3)


def build_trainer(recipe: plan.Recipe, devices: Sequence, loss: trainer.LossConfig | None = None) -> trainer.Trainer:
  """`trainer.Trainer` for a recipe on `devices`, built as `flan_jax.training.train.train` builds it;
  `loss` defaults to the recipe's (its run config's `train.*` loss bindings)."""
  model, converter = build_model(recipe.model_config)
  tx, lr_fn = optim.make_optimizer(recipe.optimizer_config, recipe.train_steps or 1)
  mesh = device_mesh(recipe.mesh_config, devices)
  return trainer.Trainer(model, tx, mesh, abstract_batch(recipe, converter), loss=recipe.loss if loss is None else loss,
                         num_microbatches=recipe.num_microbatches, learning_rate_fn=lr_fn)


class CompilerOutOfMemory(Exception):
  """XLA:TPU refused the program: it does not fit in HBM. `message` is the compiler's."""

  def __init__(self, message: str, seconds: float):
    super().__init__(message)
    self.message, self.seconds = message, seconds


@dataclasses.dataclass
class CompiledPlan:
  slice: topology.Topology
  num_slices: int
  mesh_shape: dict[str, int]
  peak: float          # bytes per device, the compiler's peak
  arguments: float
  outputs: float
  aliased: float       # outputs written in place of donated arguments
  temp: float
  code: float
  stats: hlo.HloStats
  cost_analysis_flops: float  # XLA's own figure: loop bodies counted once
  model_flops: float   # per step, all devices (flan_jax.training.flops; no remat)
  compile_seconds: float
  lowered_text: str = ""
  effort: str = "full"

  @property
  def num_devices(self) -> int:
    return self.mesh_shape["data"] * self.mesh_shape["fsdp"] * self.mesh_shape["model"]

  @property
  def hbm(self) -> float:
    return self.slice.hbm_gib_per_chip * GiB

  @property
  def fits(self) -> bool:
    return self.peak <= self.hbm

  @property
  def step_flops(self) -> float:
    """Hardware FLOPs per step, all devices (rematerialisation included)."""
    return self.stats.flops * self.num_devices

  def roofline(self) -> dict[str, float]:
    chip = self.slice.chip
    t = {"compute": self.stats.flops / self.slice.peak_flops_per_chip,
         "hbm": self.stats.bytes_accessed / chip.hbm_bytes_per_s,
         "ici": self.stats.collective_traffic / chip.ici_bytes_per_s}
    t["step"] = max(t.values())
    return t

  @property
  def mfu(self) -> float:
    """Model FLOPs / (devices x peak x roofline step time): an upper bound."""
    peak = self.slice.peak_flops_per_chip * self.num_devices
    return self.model_flops / (peak * self.roofline()["step"])


def compile_recipe(recipe: plan.Recipe, sl: topology.Topology, num_slices: int = 1,
                   loss: trainer.LossConfig | None = None, effort: str = "full") -> CompiledPlan:
  """Compiles the recipe's train step for `num_slices` x `sl`; raises CompilerOutOfMemory.
  `loss`: default the recipe's (its run config's `train.*` loss bindings). `effort`: 'full' (the trainer's program) or 'fast' (less XLA work on speed, see COMPILE_EFFORT)."""
  if effort not in COMPILE_EFFORT:
    raise ValueError(f"compile effort {effort!r}: use one of {sorted(COMPILE_EFFORT)}")
  devices = tpu.topology_devices(sl, num_slices)
  if recipe.mesh_config.num_slices != num_slices:
    recipe = dataclasses.replace(recipe, mesh_config=dataclasses.replace(recipe.mesh_config, num_slices=num_slices))
  # Building and lowering touch libtpu too; a TPU program is never stored in (or read from) JAX's cache.
  with tpu.libtpu_environment(sl.name), compile_cache.suspended():
    tr = build_trainer(recipe, devices, loss)
    t0 = time.perf_counter()
    lowered = tr.lower_train_step()
    try:
      compiled = lowered.compile(compiler_options={"exec_time_optimization_effort": COMPILE_EFFORT[effort]})
    except Exception as e:  # XlaRuntimeError / JaxRuntimeError: keep the compiler's words
      text = str(e)
      if "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower():
        raise CompilerOutOfMemory(_oom_lines(text), time.perf_counter() - t0) from None
      raise
  seconds = time.perf_counter() - t0
  mem = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  stats = hlo.analyse(compiled.as_text(), len(devices))
  model_flops = flops.train_step_flops(recipe.model_config, recipe.batch_size, recipe.input_length,
                                       recipe.target_length)
  return CompiledPlan(
      slice=sl, num_slices=num_slices, mesh_shape=dict(tr.mesh.shape), peak=float(mem.peak_memory_in_bytes),
      arguments=float(mem.argument_size_in_bytes), outputs=float(mem.output_size_in_bytes),
      aliased=float(mem.alias_size_in_bytes), temp=float(mem.temp_size_in_bytes),
      code=float(mem.generated_code_size_in_bytes), stats=stats,
      cost_analysis_flops=float(cost.get("flops", 0.0)) if cost else 0.0, model_flops=model_flops,
      compile_seconds=seconds, effort=effort)


def _oom_lines(text: str, max_lines: int = 12) -> str:
  """The compiler's out-of-memory explanation: its headline and the largest buffers."""
  lines = [l.rstrip() for l in text.splitlines() if l.strip()]
  start = next((i for i, l in enumerate(lines) if "out of memory" in l.lower() or "exceeds" in l), 0)
  out = lines[start:start + max_lines]
  if len(lines) > start + max_lines:
    out.append(f"... ({len(lines) - start - max_lines} more lines from the compiler)")
  return "\n".join(out)


# ----------------------------------------------------------------------------------------
# Output.


def _g(x: float) -> str:
  return f"{x / GiB:8.2f} GiB"


def format_compiled(c: CompiledPlan, analytic: plan.Plan | None) -> str:
  t = c.slice
  name = t.name + (f" x {c.num_slices} slices" if c.num_slices > 1 else "")
  rl = c.roofline()
  lines = [
      f"compiled   XLA:TPU for {name} ({t.topology_name}, {c.num_devices} devices), "
      f"mesh {' x '.join(f'{a}={n}' for a, n in c.mesh_shape.items())}, in {c.compile_seconds:.0f} s "
      f"({'--compile_effort=fast: not the trainer schedule, its peak can differ by ~8%' if c.effort == 'fast' else 'as the trainer compiles it'})",
      "",
      f"{'per chip (compiler)':<50}{'memory':>12}",
      f"{'arguments (state and batch)':<50}{_g(c.arguments)}",
      f"{'outputs (' + _g(c.aliased).strip() + ' written over donated arguments)':<50}{_g(c.outputs)}",
      f"{'temporaries':<50}{_g(c.temp)}",
      f"{'peak (what must fit)':<50}{_g(c.peak)}"
      + (f"   analytic estimate {_g(analytic.total).strip()} ({analytic.total / c.peak - 1:+.0%})"
         if analytic else ""),
      f"{'HBM capacity':<50}{_g(c.hbm)}   headroom {(c.hbm - c.peak) / GiB:.2f} GiB",
      "",
      f"flops      {c.step_flops:.3g} per step on all chips ({c.stats.flops:.3g} per chip, loops multiplied "
      f"out: {', '.join(f'{n}x' for _, n in c.stats.loops) or 'none'}); model FLOPs {c.model_flops:.3g} "
      f"(x{c.step_flops / c.model_flops:.2f} with remat); XLA cost_analysis, loop bodies once: "
      f"{c.cost_analysis_flops:.3g} per chip",
      "collectives per step, per chip:",
  ]
  for kind, col in c.stats.collectives.items():
    if col.count:
      lines.append(f"  {kind:<20}{col.count:10,.0f} ops {col.bytes / GiB:10.2f} GiB   ring traffic "
                   f"{col.traffic / GiB:8.2f} GiB")
  lines.append("HBM traffic per step, per chip, by source (largest):")
  for src, b in c.stats.top_traffic(5):
    lines.append(f"  {b / GiB:10.1f} GiB {b / max(c.stats.bytes_accessed, 1):6.1%}  {src}")
  lines.append(f"roofline   compute {rl['compute']:.3f} s, HBM {rl['hbm']:.3f} s ({c.stats.bytes_accessed / GiB:.0f} GiB), "
               f"ICI {rl['ici']:.3f} s -> {rl['step']:.3f} s/step, MFU <= {c.mfu:.0%} "
               f"(a roofline from peak FLOP/s, HBM and ICI bandwidths: an upper bound, not a measurement)")
  if c.stats.unknown_loops:
    lines.append(f"note       {c.stats.unknown_loops} loop(s) with an unreadable trip count were counted once")
  lines.append(f"FITS on {name} (compiler): peak {c.peak / GiB:.2f} GiB of {c.hbm / GiB:.0f} GiB per chip"
               if c.fits else f"DOES NOT FIT on {name} (compiler)")
  return "\n".join(lines)
