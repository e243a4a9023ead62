"""What every model family shares: the config base class and the family interface.

A *family* (encoder-decoder T5, decoder-only PaLM, or one a user registers) is one
object that owns everything family-specific, so that the trainer, decoder, planner,
FLOPs accounting, evaluation and checkpoints ask it instead of testing types:

    family = models.family_for(config)          # or models.get_family("decoder_only")
    module = family.build(config)
    family.feature_converter                    # "encdec" | "prefix_lm" | "decoder" (data.py)
    family.init_inputs(config)                  # model kwargs for `module.init`
    family.loss_inputs(batch)                   # (model kwargs, targets [B, L], real-token weights [B, L])
    family.param_count(config)                  # exact, from the dimensions
    family.forward_flops(config, inputs, targets)
    family.flops_lengths(batch_lengths)         # (input_length, target_length) of a batch's features
    family.decode_hooks(module)                 # what decoding.SequenceDecoder drives (see DecodeHooks)

Families register with `models.register_family`; each has one config dataclass, a
subclass of `ModelConfig`, and is found from that class (`family_for`) or by its
name (`get_family`), which is what a checkpoint's `model.json` records.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Mapping, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.models.layers import ATTENTION_KERNELS, Array

PyTree = Any

REMAT_POLICIES = {
    "none": None,
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_with_no_batch_dims": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}

# Model fields that change how, not what, is computed: a run may resume with other values.
HOW_NOT_WHAT = ("dropout_rate", "remat_policy", "dtype", "shard_residual", "attention_kernel")


def layer_stack(layer_cls, config, num_layers: int, static: tuple[str, ...] = ("deterministic", "decode")):
  """The layer class rematerialised under `config.remat_policy` and, with `config.scan_layers`,
  one `nn.scan` over `num_layers` stacked layers (T5X's scalable layout). The static
  arguments and the broadcast inputs are read from the layer's `__call__` signature by name:
  `(self, x, *inputs broadcast to every layer, deterministic, decode)`; each layer returns
  `(x, None)` so that it can be the body of the scan."""
  names = list(inspect.signature(layer_cls.__call__).parameters)
  static_argnums = tuple(names.index(n) for n in static)  # flax counts `self` as argument 0
  block = remat_layer(layer_cls, config.remat_policy, static_argnums, prevent_cse=not config.scan_layers)
  if config.scan_layers:
    block = nn.scan(block, variable_axes={"params": 0, "cache": 0},
                    split_rngs={"params": True, "dropout": True},
                    in_axes=(nn.broadcast,) * (len(names) - 2), length=num_layers,
                    metadata_params={nn.PARTITION_NAME: "layers"})
  return block


def run_stack(block, config, num_layers: int, x, *args):
  """Runs a `layer_stack`: the scanned stack `layers`, or the layers `layers_0`, `layers_1`, ..."""
  if config.scan_layers:
    return block(config, name="layers")(x, *args)[0]
  for i in range(num_layers):
    x = block(config, name=f"layers_{i}")(x, *args)[0]
  return x


def remat_layer(layer_cls, policy: str, static_argnums: tuple[int, ...], *, prevent_cse: bool = True):
  """A layer class rematerialised under `policy` (one of REMAT_POLICIES; "none": unchanged).
  `static_argnums` count `self` as 0 (flax); scanned layers pass `prevent_cse=False`, as
  `jax.checkpoint` advises inside `scan`."""
  if policy == "none":
    return layer_cls
  return nn.remat(layer_cls, policy=REMAT_POLICIES[policy], prevent_cse=prevent_cse,
                  static_argnums=static_argnums)


def _layer_index(key: str) -> int | None:
  return int(key[len("layers_"):]) if key.startswith("layers_") and key[len("layers_"):].isdigit() else None


def stack_layers(tree: PyTree) -> PyTree:
  """Unscanned parameters -> the `scan_layers=True` layout: in every module scope, the
  children `layers_0 .. layers_{n-1}` become one child `layers` whose leaves carry a
  leading layer axis (nn.scan's layout). Works on numpy or jax arrays; other keys are kept."""
  if not isinstance(tree, dict):
    return tree
  indexed = {_layer_index(k): v for k, v in tree.items() if _layer_index(k) is not None}
  out = {k: stack_layers(v) for k, v in tree.items() if _layer_index(k) is None}
  if indexed:
    if sorted(indexed) != list(range(len(indexed))):
      raise ValueError(f"layers {sorted(indexed)} are not numbered 0..{len(indexed) - 1}")
    if "layers" in out:
      raise ValueError("a scope holds both `layers` and `layers_0..`: neither layout")
    stack = np.stack if all(isinstance(x, np.ndarray) for x in jax.tree.leaves(indexed)) else jnp.stack
    out["layers"] = jax.tree.map(lambda *xs: stack(xs), *[stack_layers(indexed[i]) for i in range(len(indexed))])
  return out


def unstack_layers(tree: PyTree) -> PyTree:
  """The inverse of `stack_layers`: every `layers` child with a leading axis of n becomes
  `layers_0 .. layers_{n-1}`."""
  if not isinstance(tree, dict):
    return tree
  out = {k: unstack_layers(v) for k, v in tree.items() if k != "layers"}
  if "layers" in tree:
    leaves = jax.tree.leaves(tree["layers"])
    n = leaves[0].shape[0]
    for i in range(n):
      out[f"layers_{i}"] = unstack_layers(jax.tree.map(lambda x: x[i], tree["layers"]))
  return out


def has_stacked_layers(tree: PyTree) -> bool:
  """Whether a parameter tree (nested dicts) is in the scanned layout anywhere."""
  return isinstance(tree, dict) and any(k == "layers" or has_stacked_layers(v) for k, v in tree.items())


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Fields every family's config has. Subclasses add their own and may change defaults.

  vocab_size V, emb_dim D, num_heads H, head_dim K, mlp_dim F; `mlp_activations` has one
  entry per input projection of the (gated) MLP; `dtype` is the activation dtype.
  `shard_residual`: the residual stream between layers (what a rematerialised layer stack
  saves for the backward pass) is sharded over the `model` axis as well as the batch
  (logical name `residual_embed`), so each chip keeps 1/model of it; the tensor-parallel
  all-reduce after a layer becomes a reduce-scatter, and the next layer gathers its input
  (the same bytes on the wire). It changes where values live, not what is computed. On by
  default: XLA:TPU gives Flan-T5-XXL on v4-128 3.87 GiB/chip and 870 GiB of HBM traffic per
  step against 6.90 and 1,156 without it, Flan-PaLM 62B 12.53 against 22.59 GiB
  (docs/plans.md); without a `model` axis it changes nothing.
  `attention_kernel`: "auto" (the Pallas flash kernels where the mesh's devices are TPUs,
  XLA attention elsewhere), "xla" or "flash" (interpreted on CPU: slow, for tests); see
  `layers.flash_platform`. Decoding one token at a time always uses XLA attention.
  """
  vocab_size: int = 32128
  emb_dim: int = 512
  num_heads: int = 8
  head_dim: int = 64
  mlp_dim: int = 2048
  mlp_activations: tuple[str, ...] = ("gelu", "linear")
  dropout_rate: float = 0.0
  dtype: str = "float32"
  layer_norm_epsilon: float = 1e-6
  remat_policy: str = "none"
  shard_residual: bool = True
  attention_kernel: str = "auto"

  def __post_init__(self):
    object.__setattr__(self, "mlp_activations", tuple(self.mlp_activations))
    if self.remat_policy not in REMAT_POLICIES:
      raise ValueError(f"{type(self).__name__}.remat_policy={self.remat_policy!r}; "
                       f"choose from {sorted(REMAT_POLICIES)}")
    if self.attention_kernel not in ATTENTION_KERNELS:
      raise ValueError(f"{type(self).__name__}.attention_kernel={self.attention_kernel!r}; "
                       f"choose from {list(ATTENTION_KERNELS)}")

  @property
  def residual_axis(self) -> str:
    """The logical name of the embedding axis of the residual stream between layers."""
    return "residual_embed" if self.shard_residual else "embed"

  @property
  def activation_dtype(self) -> jnp.dtype:
    return jnp.dtype(self.dtype)

  def to_dict(self) -> dict[str, Any]:
    """The fields as JSON-ready values (tuples become lists)."""
    return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
            for f in dataclasses.fields(self)}


class DecodeHooks(Protocol):
  """How `decoding.SequenceDecoder` drives one family's module (see decoding's module docstring).

  generation_error: None, or why this model cannot generate (scoring still works).
  encoder_decoder: True where T5X's default decode is beam search with one beam (its
    EncoderDecoderModel), False where it is greedy (its DecoderOnlyModel).
  """
  generation_error: str | None
  encoder_decoder: bool

  def context(self, params: PyTree, inputs_BxS: Array) -> PyTree: ...
  def prefix(self, inputs_BxS: Array) -> tuple[Array, Array]: ...
  def cache_shapes(self, batch: int, input_len: int, length: int) -> PyTree: ...
  def step(self, params: PyTree, context: PyTree, tokens_Bx1: Array, index: Array,
           cache: PyTree) -> tuple[Array, PyTree]: ...
  def target_logprobs(self, params: PyTree, inputs_BxS: Array, targets_BxL: Array) -> Array: ...


@dataclasses.dataclass(frozen=True)
class Attention:
  """One attention block of a layer, as the planner counts its activations."""
  query_length: int
  kv_length: int
  kv_heads: int  # key/value heads (fewer than the query heads: multi-query)


@dataclasses.dataclass(frozen=True)
class Stack:
  """A stack of identical layers, as the planner counts its activations."""
  num_layers: int
  length: int                       # tokens per sequence through the stack
  attention: tuple[Attention, ...]  # the attention blocks of one layer
  other: int                        # further per-token activations of a layer (norms, residuals), in emb_dim units


@dataclasses.dataclass(frozen=True)
class ActivationLayout:
  """What `planning.plan.activation_bytes` needs to know of a family's train step: its layer
  stacks, what else the backward pass keeps per sequence, the logits, and how XLA:TPU holds
  a rematerialised layer (fitted on the family's compiled recipes, docs/plans.md)."""
  stacks: tuple[Stack, ...]
  saved_activations: float        # per sequence, activation-dtype elements beside the layers (encoder output)
  saved_float32: float            # per sequence, float32 values beside the layers (masks, position biases)
  logits_length: int              # tokens per sequence with logits
  logits_float32: bool            # a dense float32 head (else logits in the activation dtype)
  float32_attention_logits: bool  # attention logits upcast to float32 (else kept in the activation dtype)
  recompute_fuses_softmax_cast: bool  # a recomputed layer keeps no activation-dtype copy of its softmax
  layer_phase_copies: int         # the recomputed layer plus its gradients: 2, or 1 where XLA writes over them

  @property
  def num_layers(self) -> int:
    return sum(s.num_layers for s in self.stacks)


class Family:
  """Base of the model families; subclasses set the class attributes and the methods
  that raise NotImplementedError."""
  name: str = ""                      # recorded in model.json
  config_class: type = ModelConfig
  feature_converter: str = ""         # data.py's name of the seqio feature converter
  architecture: str = ""              # "encoder-decoder" | "decoder-only" (plan, tables)

  def build(self, config: ModelConfig) -> nn.Module:
    raise NotImplementedError

  def init_inputs(self, config: ModelConfig, batch: int = 1, length: int = 8) -> dict[str, Array]:
    """Model keyword arguments (token arrays) that `module.init` accepts."""
    raise NotImplementedError

  def abstract_params(self, config: ModelConfig) -> PyTree:
    """Boxed parameter shapes (with logical axis names); nothing is allocated."""
    module, inputs = self.build(config), self.init_inputs(config, 1, 1)
    return jax.eval_shape(lambda: module.init(jax.random.key(0), **inputs))["params"]

  def loss_inputs(self, batch: Mapping[str, Array]) -> tuple[dict[str, Array], Array, Array]:
    """(model kwargs, targets [B, L], real-token weights [B, L]) of a feature-converted batch.
    The seqio converters both name targets and weights as below."""
    return dict(batch), batch["decoder_target_tokens"], batch["decoder_loss_weights"]

  def flops_lengths(self, feature_lengths: Mapping[str, int]) -> tuple[int, int]:
    """(input_length, target_length) for `forward_flops` from a batch's feature lengths."""
    return feature_lengths.get("encoder_input_tokens", 0), feature_lengths["decoder_target_tokens"]

  def plan_lengths(self, task_feature_lengths: Mapping[str, int]) -> tuple[int, int]:
    """(input_length, target_length) of the model for TASK_FEATURE_LENGTHS (as the converter packs)."""
    raise NotImplementedError

  def param_count(self, config: ModelConfig) -> int:
    raise NotImplementedError

  def activation_layout(self, config: ModelConfig, input_length: int, target_length: int) -> ActivationLayout:
    """The train step's activations as the planner counts them (`plan_lengths`' lengths)."""
    raise NotImplementedError

  def forward_flops(self, config: ModelConfig, input_length: int, target_length: int) -> float:
    raise NotImplementedError

  def decode_hooks(self, module: nn.Module) -> DecodeHooks:
    raise NotImplementedError

  def __repr__(self):
    return f"<model family {self.name!r} ({self.config_class.__name__})>"


def mlp_params(config: ModelConfig) -> int:
  """Parameters of one gated MLP: one D x F projection per activation, then F x D."""
  d, f = config.emb_dim, config.mlp_dim
  return len(config.mlp_activations) * d * f + f * d
