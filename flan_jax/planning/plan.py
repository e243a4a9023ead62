"""`flan-jax plan`: per-chip memory and step time of a recipe on a topology, without hardware.

    flan-jax plan --gin_file=gin/recipes/flan_palm_540b.gin --topology=v4-1024

Parameter shapes come from `jax.eval_shape` of the real model init, their sharding
from the real logical-axis rules (`partitioning.LOGICAL_AXIS_RULES`) on an abstract
mesh, the optimizer state from `jax.eval_shape` of the real Adafactor, sharded as
`trainer.Trainer` shards it. Activations are an analytic estimate (see
`activation_bytes`). Step time assumes a model-FLOPs utilisation (default 50%).

Topology names follow Cloud TPU: v2/v3/v4/v5p-N count TensorCores (two per chip:
v4-512 is 256 chips), v5e/v6e-N count chips; GPUs are `h100x64` (64 GPUs). The one
topology type (`planning.topology.Topology`) also serves `plan --compile` and launchers.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding

from flan_jax.training import config as config_lib, flops, trainer
from flan_jax.runtime import gin_utils
from flan_jax.core import optim, partitioning
from flan_jax import models
from flan_jax.models import build_model, layers
from flan_jax.models.family import ModelConfig
from flan_jax.planning.topology import Topology, parse_topology  # noqa: F401  (plan.Topology for callers)

GiB = 2.0 ** 30
RUN_FILE = "runs/finetune.gin"  # the run logic every training recipe includes


# ----------------------------------------------------------------------------------------
# What the plan needs from the gin files.


@dataclasses.dataclass(frozen=True)
class Recipe:
  model_config: ModelConfig
  mesh_config: partitioning.MeshConfig
  optimizer_config: optim.OptimizerConfig
  batch_size: int
  input_length: int   # encoder length; 0 for decoder-only models
  target_length: int  # decoder length (decoder-only: inputs + targets, packed)
  train_steps: int | None
  num_microbatches: int = 1
  loss: trainer.LossConfig = trainer.LossConfig()
  topology: str | None = None  # the recipe's TOPOLOGY macro: its slice for `plan` and `launch`
  # The whole run these numbers come from (not part of the recipe's identity or hash).
  run: config_lib.RunConfig | None = dataclasses.field(default=None, compare=False, hash=False)

  @property
  def is_decoder_only(self) -> bool:
    return models.family_for(self.model_config).architecture == "decoder-only"


def recipe_from_gin(files: Sequence[str], bindings: Sequence[str] = ()) -> Recipe:
  """Parses gin files (+ `KEY = VALUE` bindings) and reads the run's numbers.

  The numbers are the run config's (`training.config.from_parsed_gin`: the same `train.*`
  bindings `flan-jax train` runs with); bindings to configurables the plan does not load
  (evaluation, inference) are skipped. Leaves no gin state behind (`gin_utils.parsed`).
  """
  # The run file first: a recipe includes it anyway (its own settings come after), and a model
  # file planned on its own (with BATCH_SIZE and TASK_FEATURE_LENGTHS bound) gets the run that
  # `flan-jax train` would give it.
  with gin_utils.parsed([RUN_FILE, *files], bindings):
    run = config_lib.from_parsed_gin()
    topology = gin_utils.macro("TOPOLOGY")
    model_config = run.model if run.model is not None else models.config_from_gin()
  lengths, batch_size = run.data.task_feature_lengths, run.data.batch_size
  if not lengths or not batch_size:
    raise ValueError("the gin files must set BATCH_SIZE and TASK_FEATURE_LENGTHS (a recipe in gin/recipes/ does)")
  input_length, target_length = models.family_for(model_config).plan_lengths(lengths)
  return Recipe(
      model_config=model_config, mesh_config=run.partitioning, optimizer_config=run.optimizer,
      batch_size=int(batch_size), input_length=input_length, target_length=target_length,
      train_steps=run.train_steps, num_microbatches=int(run.num_microbatches or 1), loss=run.loss,
      topology=topology if isinstance(topology, str) else None, run=run)


# ----------------------------------------------------------------------------------------
# Memory.


@dataclasses.dataclass(frozen=True)
class Plan:
  recipe: Recipe
  topology: Topology
  mesh_shape: dict[str, int]
  params: float       # bytes per device
  optimizer: float
  gradients: float
  activations: float  # saved for the backward pass
  transient: float    # one layer's rematerialised activations, logits, all-gathered weights
  largest_params: tuple[tuple[str, tuple[int, ...], str, float], ...]
  notes: tuple[str, ...] = ()
  mfu: float = 0.5

  @property
  def total(self) -> float:
    return self.params + self.optimizer + self.gradients + self.activations + self.transient

  @property
  def hbm(self) -> float:
    return self.topology.hbm_bytes_per_device

  @property
  def fits(self) -> bool:
    return self.total <= self.hbm

  @property
  def step_flops(self) -> float:
    r = self.recipe
    return flops.train_step_flops(r.model_config, r.batch_size, r.input_length, r.target_length)

  @property
  def step_seconds(self) -> float:
    return self.step_flops / (self.topology.num_devices * self.topology.peak_flops_per_device * self.mfu)


def _per_device_bytes(shape, dtype, sharding: NamedSharding) -> float:
  return math.prod(sharding.shard_shape(tuple(shape))) * jnp.dtype(dtype).itemsize


class Planner:
  """Abstract parameters and optimizer state of a recipe, planned on any topology."""

  def __init__(self, recipe: Recipe):
    self.recipe = recipe
    self.model, _ = build_model(recipe.model_config)
    self.boxed = models.family_for(recipe.model_config).abstract_params(recipe.model_config)
    self.params = nn.unbox(self.boxed)
    total_steps = recipe.train_steps or 1
    self.optimizer, _ = optim.make_optimizer(recipe.optimizer_config, total_steps)
    self.optimizer = optim.bind_param_axes(self.optimizer, self.boxed)  # factored as the trainer does
    self.opt_state = jax.eval_shape(self.optimizer.init, self.params)

  def mesh_shape(self, topology: Topology) -> tuple[dict[str, int], list[str]]:
    n, notes = topology.num_devices, []
    mc = self.recipe.mesh_config
    model = mc.num_partitions if mc.num_partitions is not None else mc.model_parallel
    per_slice = n // mc.num_slices
    if per_slice % model:
      fitted = math.gcd(model, per_slice)
      notes.append(f"MeshConfig model parallelism {model} does not divide {per_slice} devices; "
                   f"planned with {fitted}")
      mc = dataclasses.replace(mc, model_parallel=fitted, num_partitions=None)
    if mc.num_slices > 1:
      notes.append(f"{mc.num_slices} slices over DCN: data axis = slices x per-slice data")
    return dict(zip(partitioning.MESH_AXES, mc.mesh_shape(n))), notes

  def plan(self, topology: Topology, mfu: float = 0.5) -> Plan:
    r = self.recipe
    shape, notes = self.mesh_shape(topology)
    mesh = partitioning.make_abstract_mesh(tuple(shape[a] for a in partitioning.MESH_AXES))
    dp = shape["data"] * shape["fsdp"]
    micro = r.num_microbatches
    if r.batch_size % micro or (r.batch_size // micro) % dp:
      raise ValueError(
          f"BATCH_SIZE={r.batch_size} in {micro} microbatch(es) does not split over the data-parallel size "
          f"{dp} (data={shape['data']} x fsdp={shape['fsdp']}) of {topology.name}; raise "
          f"MeshConfig.model_parallel (MODEL_PARALLEL) or BATCH_SIZE, or plan a smaller topology")
    shardings = partitioning.shardings_for(self.boxed, mesh)  # raises naming any non-divisible parameter
    flat = jax.tree_util.tree_flatten_with_path(self.params)[0]
    flat_sh = jax.tree.leaves(shardings, is_leaf=lambda x: isinstance(x, NamedSharding))
    per_param = [(jax.tree_util.keystr(p, simple=True, separator="/"), x, s, _per_device_bytes(x.shape, x.dtype, s))
                 for (p, x), s in zip(flat, flat_sh)]
    params = sum(b for *_, b in per_param)
    largest = tuple((name, tuple(x.shape), str(tuple(s.spec)), b)
                    for name, x, s, b in sorted(per_param, key=lambda t: -t[3])[:4])

    # Optimizer state, sharded as trainer.Trainer does (optim.state_shardings): Adafactor's
    # factored row/column statistics shard by the logical names of the dims they keep.
    opt_sh = optim.state_shardings(self.optimizer, self.opt_state, self.params, shardings, mesh)
    opt_sh = jax.tree.leaves(opt_sh, is_leaf=lambda x: isinstance(x, NamedSharding))
    opt = sum(_per_device_bytes(x.shape, x.dtype, s) for x, s in zip(jax.tree.leaves(self.opt_state), opt_sh))
    grads = params * (2 if micro > 1 else 1)  # + the accumulator when microbatching
    saved, layer_phase, loss_phase = activation_bytes(r, shape, tpu=not topology.is_gpu)
    if shape["fsdp"] > 1:  # one layer's weights all-gathered over fsdp, double-buffered, in activation dtype
      layer_bytes = _largest_layer_bytes(per_param) * shape["fsdp"]
      layer_phase += 2 * layer_bytes * r.model_config.activation_dtype.itemsize / 4
    transient = max(layer_phase, loss_phase)
    return Plan(r, topology, shape, params, opt, grads, saved, transient, largest, tuple(notes), mfu)


def _largest_layer_bytes(per_param) -> float:
  """Per-device bytes of the parameters of one layer (scanned stacks divided by depth)."""
  layers: dict[str, float] = {}
  for name, x, _, b in per_param:
    parts = name.split("/")
    if "layers" in parts:  # scanned: [layers, ...] stacked
      layers["scanned"] = layers.get("scanned", 0.0) + b / x.shape[0]
    else:
      key = next((p for p in parts if p.startswith("layers_")), None)
      if key is not None:
        stack = parts[0] if parts[0] in ("encoder", "decoder") else ""
        layers[stack + key] = layers.get(stack + key, 0.0) + b
  return max(layers.values(), default=0.0)


def activation_bytes(recipe: Recipe, mesh_shape: dict[str, int], tpu: bool = True) -> tuple[float, float, float]:
  """(saved, layer phase, loss phase) activation bytes per device for one microbatch.

  Saved: what the backward pass keeps per layer under the remat policy, times the
  layers. Per token and layer we count, in activation-dtype elements (fp32 as two):
    carry  - the layer input (all that 'full' keeps);
    proj   - outputs of the weight matmuls q, k, v, out, wi*, wo
             (added by 'dots_with_no_batch_dims');
    scores - attention logits and their weighted sum (added by 'dots');
    other  - norms, RoPE, the fp32 softmax (4 bytes, whatever the activation dtype)
             and, for bf16 activations, its bf16 copy (one activation-dtype softmax
             where the model keeps attention logits in that dtype); activations
             (added by 'none').
  Activations are sharded over the batch by data x fsdp and over heads / mlp / vocab
  by model; `embed` stays whole (as the rules place it on activations).
  Transient: the larger of two phases that are never live together (calibrated on
  XLA:TPU's compiled peaks, docs/plans.md): the loss phase, one [tokens, vocab] buffer
  in the dtype the model emits logits (T5's dense head: fp32; PaLM's tied embedding:
  activation dtype) -- the fp32 upcast, softmax and z-loss are fused into the loss and
  never stored, and the logits' gradient is written over the logits; and the layer phase, one layer recomputed plus its gradients (fsdp weight gathers are
  added to it by `Planner.plan`). The logits are freed before the first layer's
  backward starts, so the two do not add.
  """
  cfg = recipe.model_config
  layout = models.family_for(cfg).activation_layout(cfg, recipe.input_length, recipe.target_length)
  m = mesh_shape["model"]
  dp = mesh_shape["data"] * mesh_shape["fsdp"]
  seqs = recipe.batch_size / recipe.num_microbatches / dp
  split = lambda n: n / m if n % m == 0 else n
  d, k = cfg.emb_dim, cfg.head_dim
  h, f, v = split(cfg.num_heads), split(cfg.mlp_dim), split(cfg.vocab_size)
  n_wi = len(cfg.mlp_activations)
  keep = {"full": 0, "dots_with_no_batch_dims": 1, "dots": 2, "none": 3}[cfg.remat_policy]
  # A policy that saves matmul outputs keeps only those the backward reads: not the output
  # projections' (attention out, MLP wo), which only feed the residual sum. Fitted on the
  # compiled Flan-PaLM 62B row (docs/plans.md, remat dots_with_no_batch_dims).
  out_proj = 0 if keep in (1, 2) else d
  mlp_proj, mlp_other = n_wi * f + out_proj, 2 * f
  act = cfg.activation_dtype.itemsize
  f32 = 4 / act  # a float32 value in activation-dtype elements
  # The softmax: float32 with a copy in activation dtype (none when that is float32), or, for
  # models whose attention logits stay in the activation dtype (T5X's float32_attention_logits
  # = False, the Flan-T5 default), one activation-dtype buffer.
  # Fitted on the compiled Flan-T5 rows (docs/plans.md): saved for the backward, such a model
  # keeps two activation-dtype [B, H, L, S] buffers besides the logits (the probabilities and
  # their dropped-out copy); the layer being recomputed, one.
  flash = layers.attention_platform(cfg.attention_kernel, "tpu" if tpu else "gpu") is not None
  f32_logits = layout.float32_attention_logits
  soft = f32 if f32_logits else 2
  copy = 1 if act != 4 and f32_logits else 0
  work = dict(copy=0, soft=f32 if f32_logits else 1) if layout.recompute_fuses_softmax_cast else {}

  def attention(block, copy: float = copy, soft: float = soft) -> list[float]:
    """[proj, scores, other] per query token (K/V projections amortised per query token).
    The flash kernels keep no [L, S] scores: their output and a float32 log-sum-exp row
    (128 lanes wide) per head, which no dots policy saves (a kernel is not a dot)."""
    kvh = split(block.kv_heads) if block.kv_heads == cfg.num_heads else block.kv_heads
    kv = 2 * kvh * k * (block.kv_length / block.query_length)
    if flash:
      return [h * k + kv + out_proj, 0, h * k + h * 128 * f32 + 3 * h * k]
    return [h * k + kv + out_proj, h * block.kv_length + h * k, (soft + copy) * h * block.kv_length + 3 * h * k]

  def layer(stack, **kw) -> tuple[float, float]:
    parts = [attention(a, **kw) for a in stack.attention]
    proj = sum(p[0] for p in parts) + mlp_proj
    scores = sum(p[1] for p in parts)
    residual = d / m if cfg.shard_residual and d % m == 0 else d  # the layer's input, kept
    other = sum(p[2] for p in parts) + mlp_other + stack.other * d
    if flash and keep == 3:
      # Without remat a layer also keeps its norms' float32 inputs and the MLP's intermediate
      # products (about 10 d + 3 f per token, read off the compiled Flan-T5-small program);
      # with XLA attention the fitted [B, H, L, S] terms above absorbed them.
      other += 10 * d + 3 * f
    cats = [residual, proj, scores, other]
    return sum(cats[:keep + 1]), sum(cats)

  saved = seqs * sum(s.num_layers * s.length * layer(s)[0] for s in layout.stacks) * act
  saved += seqs * (layout.saved_activations * act + (0 if flash else layout.saved_float32 * 4))
  working = seqs * max(s.length * layer(s, **work)[1] for s in layout.stacks) * act
  if flash and layout.saved_float32:  # a position bias [H, L, S] and its gradient, shared by the batch
    working += 2 * h * max(s.length * s.length for s in layout.stacks) * 4
  # A rematerialised layer holds the recomputed layer and its gradients (`layer_phase_copies`).
  layer_phase = (layout.layer_phase_copies if keep < 3 else 1) * working
  # The logits, then their gradient in place; bfloat16 logits (a tied embedding) are upcast
  # to a float32 copy beside them (XLA:TPU's Flan-PaLM 8B program keeps both [tokens, vocab]
  # at its peak); float32 logits need no copy.
  logit_bytes = 4 if layout.logits_float32 or act == 4 else act + 4
  loss_phase = seqs * layout.logits_length * v * logit_bytes
  return saved, layer_phase, loss_phase


# ----------------------------------------------------------------------------------------
# Output.


def smallest_fitting(planner: Planner, topology: Topology, mfu: float) -> Plan | None:
  for size in topology.family_sizes():
    try:
      p = planner.plan(topology.with_size(size), mfu)
    except ValueError:
      continue
    if p.fits:
      return p
  return None


def _gib(x: float) -> str:
  return f"{x / GiB:8.2f} GiB"


def format_plan(plan: Plan, smallest: Plan | None = None) -> str:
  r, t, cfg = plan.recipe, plan.topology, plan.recipe.model_config
  kind = "decoder-only" if r.is_decoder_only else "encoder-decoder"
  lengths = (f"{r.target_length} tokens (packed)" if r.is_decoder_only
             else f"{r.input_length} inputs + {r.target_length} targets")
  dp = plan.mesh_shape["data"] * plan.mesh_shape["fsdp"]
  lines = [
      f"topology   {t.name}: {t.chips} chips, {t.num_devices} devices x {_gib(t.hbm_bytes_per_device).strip()} HBM, "
      f"{t.peak_flops_per_device / 1e12:.0f} TFLOP/s peak each",
      "mesh       " + " x ".join(f"{a}={n}" for a, n in plan.mesh_shape.items()),
      f"model      {type(cfg).__name__} {kind}, {flops.param_count(cfg) / 1e9:.2f}B parameters, "
      f"dtype {cfg.dtype}, remat {cfg.remat_policy}"
      + (f", scan_layers {cfg.scan_layers}" if hasattr(cfg, "scan_layers") else ""),
      f"batch      {r.batch_size} x {lengths}, {r.num_microbatches} microbatch(es), "
      f"{r.batch_size / r.num_microbatches / dp:g} sequence(s) per data shard",
  ]
  lines += [f"note       {n}" for n in plan.notes]
  lines += [
      "",
      f"{'per device':<50}{'memory':>12}",
      f"{'parameters (float32, sharded)':<50}{_gib(plan.params)}",
      f"{'optimizer state (Adafactor, as trainer shards it)':<50}{_gib(plan.optimizer)}",
      f"{'gradients' + (' + accumulator' if r.num_microbatches > 1 else ''):<50}{_gib(plan.gradients)}",
      f"{'activations saved for backward (' + cfg.remat_policy + ')':<50}{_gib(plan.activations)}",
      f"{'transient (layer recompute + gathers, or logits)':<50}{_gib(plan.transient)}",
      f"{'total':<50}{_gib(plan.total)}  of {_gib(plan.hbm).strip()} HBM",
      "",
      "largest parameters per device:",
  ]
  lines += [f"  {name:<42} {str(shape):<22} {spec:<28}{_gib(b)}" for name, shape, spec, b in plan.largest_params]
  step = plan.step_seconds
  lines += ["", f"step       {plan.step_flops:.3g} model FLOPs; at {plan.mfu:.0%} MFU {step:.2f} s/step, "
            f"{r.batch_size * (r.input_length + r.target_length) / step:,.0f} tokens/s"]
  if r.train_steps:
    lines.append(f"run        {r.train_steps} steps: {r.train_steps * step / 3600:.1f} h, "
                 f"{r.train_steps * plan.step_flops:.2g} FLOPs")
  if smallest is not None:
    lines.append(f"smallest   {smallest.topology.name} fits this recipe's mesh settings "
                 f"({_gib(smallest.total).strip()} per device)")
  else:
    lines.append(f"smallest   no {t.family} slice up to {t.with_size(t.family_sizes()[-1]).name} fits with this mesh")
  margin = (plan.hbm - plan.total) / GiB
  lines.append(f"FITS on {t.name} with {margin:.2f} GiB to spare per device" if plan.fits
               else f"DOES NOT FIT on {t.name}: {-margin:.2f} GiB over per device")
  return "\n".join(lines)
