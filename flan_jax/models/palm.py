"""PaLM-style decoder-only model (Flan-PaLM) assembled from `layers`.

PaLM (Chowdhery et al. 2022, section 2): SwiGLU feed-forward, a *parallel* block
(`x + attn(norm(x)) + mlp(norm(x))` with one shared pre-norm), multi-query
attention (one shared key/value head), rotary position embeddings, shared
input/output embeddings, no biases anywhere.

Choices this file makes where the paper leaves room:
  * Output logits are `x @ embedding.T / sqrt(D)`, the T5X `logits_via_embedding`
    convention. Embeddings are initialised N(0, 1) (PaLM), and the final RMSNorm
    makes `x` unit-scale, so without the factor initial logits would have a standard
    deviation of sqrt(D) (136 for 540B).
  * Dropout (fine-tuning only; PaLM pre-trained without) is applied to the embedded
    inputs, to attention weights, to the MLP hidden layer and to the sum of the two
    branches before it joins the residual stream, as T5X applies it.

Shape letters as in `layers`: B batch, L length, D `emb_dim`, H heads, K head dim,
F `mlp_dim`, V vocabulary.

Parameter names follow T5X's decoder-only layout (`token_embedder/embedding`,
`layers_0/attention/query/kernel`, ...). With `scan_layers=True` the per-layer
parameters are stacked under `layers/...` with a leading `layers` axis.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp

from flan_jax.models import layers
from flan_jax.models.layers import Array, constrain

PyTree = Any
from flan_jax.models.family import (ActivationLayout, Attention, Family, ModelConfig, Stack, layer_stack,
                                    mlp_params, run_stack)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class PaLMConfig(ModelConfig):
  """Dimensions of a PaLM decoder. Sizes differ only in these numbers (gin/models/palm).

  `prefix_bidirectional`: positions marked by `decoder_causal_attention` (the inputs
  of seqio's PrefixLMFeatureConverter) attend to each other in both directions.
  `scan_layers`: one `nn.scan` over a stacked layer (compile time flat in depth).
  The z-loss belongs to the loss function, not to the model.
  """
  vocab_size: int = 256_000
  emb_dim: int = 4096
  num_heads: int = 16
  head_dim: int = 256
  mlp_dim: int = 16384
  mlp_activations: tuple[str, ...] = ("silu", "linear")
  num_kv_heads: int = 1
  num_layers: int = 32
  scan_layers: bool = False
  prefix_bidirectional: bool = False

  def __post_init__(self):
    super().__post_init__()
    if self.num_heads % self.num_kv_heads:
      raise ValueError(f"PaLMConfig.num_kv_heads={self.num_kv_heads} must divide num_heads={self.num_heads}")


class DecoderLayer(nn.Module):
  """One parallel block. Returns `(x, None)` so that it can be the body of `nn.scan`."""
  config: PaLMConfig

  @nn.compact
  def __call__(self, x_BxLxD: Array, bias_Bx1xLxS: Array | None, positions_BxL: Array,
               deterministic: bool = True, decode: bool = False) -> tuple[Array, None]:
    cfg, dt = self.config, self.config.activation_dtype
    y_BxLxD = layers.RMSNorm(cfg.layer_norm_epsilon, dt, name="pre_layer_norm")(x_BxLxD)
    attn_BxLxD = layers.Attention(
        cfg.num_heads, cfg.head_dim, num_kv_heads=cfg.num_kv_heads, dropout_rate=cfg.dropout_rate,
        scale_logits=True, use_rope=True, dtype=dt, name="attention")(
            y_BxLxD, y_BxLxD, bias_Bx1xLxS, deterministic=deterministic, decode=decode,
            positions_BxL=positions_BxL)
    mlp_BxLxD = layers.GatedMlp(cfg.mlp_dim, cfg.mlp_activations, cfg.dropout_rate, dt, name="mlp")(
        y_BxLxD, deterministic)
    branch_BxLxD = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(
        attn_BxLxD + mlp_BxLxD, deterministic=deterministic)
    return constrain(x_BxLxD + branch_BxLxD, ("batch", "length", cfg.residual_axis)), None


def attention_bias(segment_ids_BxL: Array, causal_attention_BxL: Array | None, prefix_bidirectional: bool) -> Array:
  """[B, 1, L, L] additive bias: causal within each packed example; with
  `prefix_bidirectional`, full attention among the positions marked as prefix."""
  l = segment_ids_BxL.shape[1]
  allowed = layers.causal_mask(l)
  if prefix_bidirectional and causal_attention_BxL is not None:
    prefix = causal_attention_BxL > 0
    allowed = allowed | (prefix[:, None, :, None] & prefix[:, None, None, :])
  allowed = allowed & layers.segment_mask(segment_ids_BxL, segment_ids_BxL)
  return layers.mask_to_bias(allowed)


class DecoderOnlyLM(nn.Module):
  """Decoder-only LM. `__call__` takes the features of seqio's DecoderFeatureConverter
  (or PrefixLMFeatureConverter) and returns float32 logits [B, L, V].

  Decoding (`decode=True`): a first call with the full-length token array creates the
  KV cache (one cache per layer, stacked under `layers` when scanned) and returns
  ordinary logits; later calls feed one token [B, 1] per step with
  `mutable=['cache']`. Positions come from `decoder_positions` when given, else from
  a step counter kept in the cache.
  """
  config: PaLMConfig

  @nn.compact
  def __call__(self, decoder_input_tokens: Array, decoder_segment_ids: Array | None = None,
               decoder_positions: Array | None = None, decoder_causal_attention: Array | None = None,
               deterministic: bool = True, decode: bool = False, **unused_features) -> Array:
    cfg, dt = self.config, self.config.activation_dtype
    tokens_BxL = decoder_input_tokens
    b, l = tokens_BxL.shape
    full_positions_BxL = jnp.broadcast_to(jnp.arange(l, dtype=jnp.int32), (b, l))
    if decode:
      is_init = not self.has_variable("cache", "position")
      step = self.variable("cache", "position", lambda: jnp.array(0, jnp.int32))
      if is_init:  # sizes the cache; the output only needs to be well formed
        positions_BxL = full_positions_BxL
        bias = attention_bias(jnp.ones((b, l), jnp.int32), None, False)
      else:  # the Attention layers mask cache slots not yet written
        positions_BxL = (decoder_positions if decoder_positions is not None
                         else jnp.full((b, l), step.value, jnp.int32))
        bias = None
        step.value = step.value + l
    else:
      positions_BxL = decoder_positions if decoder_positions is not None else full_positions_BxL
      segment_ids_BxL = (decoder_segment_ids if decoder_segment_ids is not None
                         else jnp.ones((b, l), jnp.int32))
      prefix = cfg.prefix_bidirectional and decoder_causal_attention is not None
      flash = None if prefix else layers.flash_platform(cfg.attention_kernel)  # the kernels know causal masks only
      if flash:
        bias = layers.FlashMask(segment_ids_BxL, segment_ids_BxL, causal=True, platform=flash)
      else:
        bias = attention_bias(segment_ids_BxL, decoder_causal_attention, cfg.prefix_bidirectional)

    embedder = layers.Embed(cfg.vocab_size, cfg.emb_dim, dt, name="token_embedder")
    x_BxLxD = embedder(tokens_BxL)
    x_BxLxD = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x_BxLxD, deterministic=deterministic)

    block = layer_stack(DecoderLayer, cfg, cfg.num_layers)
    x_BxLxD = run_stack(block, cfg, cfg.num_layers, x_BxLxD, bias, positions_BxL, deterministic, decode)

    x_BxLxD = layers.RMSNorm(cfg.layer_norm_epsilon, dt, name="decoder_norm")(x_BxLxD)
    x_BxLxD = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x_BxLxD, deterministic=deterministic)
    logits_BxLxV = embedder.attend(x_BxLxD) / jnp.sqrt(cfg.emb_dim).astype(dt)
    return constrain(logits_BxLxV.astype(jnp.float32), ("batch", "length", "vocab"))


def param_count(config: PaLMConfig) -> int:
  """Number of parameters, from abstract shapes (nothing is allocated)."""
  shapes = jax.eval_shape(
      lambda: DecoderOnlyLM(config).init(jax.random.key(0), jnp.zeros((1, 1), jnp.int32))["params"])
  return sum(math.prod(x.shape) for x in jax.tree.leaves(nn.unbox(shapes)))


# ----------------------------------------------------------------------------------------
# The family object: what the trainer, decoder, planner and FLOPs accounting ask.


class DecoderOnlyHooks:
  """PaLM-style LM: the prompt is part of the decoder sequence, `[0] + prompt + continuation`."""
  encoder_decoder = False  # T5X's DecoderOnlyModel decodes greedily by default

  def __init__(self, model: nn.Module):
    self.model = model
    if getattr(model.config, "prefix_bidirectional", False):
      self.generation_error = (
          "decoding a prefix_bidirectional model is not supported: the cache reads the prompt "
          "causally, one token per step; scoring (score / score_options) is")
    else:
      self.generation_error = None

  def context(self, params: PyTree, inputs_BxS: Array) -> PyTree:
    return {}

  def prefix(self, inputs_BxS: Array) -> tuple[Array, Array]:
    prefix_BxP = jnp.pad(inputs_BxS, ((0, 0), (1, 0)))
    return prefix_BxP, 1 + jnp.sum(inputs_BxS > 0, axis=1).astype(jnp.int32)

  def cache_shapes(self, batch: int, input_len: int, length: int) -> PyTree:
    tokens = jnp.zeros((batch, length), jnp.int32)
    return jax.eval_shape(lambda: self.model.init(jax.random.key(0), tokens, decode=True)["cache"])

  def step(self, params: PyTree, context: PyTree, tokens_Bx1: Array, index: Array, cache: PyTree):
    positions_Bx1 = jnp.full(tokens_Bx1.shape, index, jnp.int32)
    logits, state = self.model.apply({"params": params, "cache": cache}, tokens_Bx1,
                                     decoder_positions=positions_Bx1, decode=True, mutable=["cache"])
    return logits[:, 0], state["cache"]

  def target_logprobs(self, params: PyTree, inputs_BxS: Array, targets_BxL: Array) -> Array:
    """As for T5, on the sequence `inputs + targets` (each row's prompt right-padded away)."""
    b, s = inputs_BxS.shape
    l = targets_BxL.shape[1]
    prompt_len_B = jnp.sum(inputs_BxS > 0, axis=1)
    # Row layout: prompt, targets, padding; targets start at each row's prompt length.
    cols = jnp.arange(s + l)[None, :]
    tgt_idx = jnp.clip(cols - prompt_len_B[:, None], 0, l - 1)
    from_targets = cols >= prompt_len_B[:, None]
    seq = jnp.where(from_targets, jnp.take_along_axis(targets_BxL, tgt_idx, axis=1),
                    jnp.pad(inputs_BxS, ((0, 0), (0, l))))
    decoder_inputs = jnp.pad(seq[:, :-1], ((0, 0), (1, 0)))
    causal_attention = (cols <= prompt_len_B[:, None]).astype(jnp.int32)  # seqio PrefixLM: prompt + 1
    logits = self.model.apply({"params": params}, decoder_inputs, decoder_causal_attention=causal_attention)
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), seq[..., None], axis=-1)[..., 0]
    # Back to [B, L] target positions.
    idx_BxL = jnp.clip(prompt_len_B[:, None] + jnp.arange(l)[None, :], 0, s + l - 1)
    return jnp.take_along_axis(logp, idx_BxL, axis=1)


class DecoderOnly(Family):
  """PaLM-style decoder-only LM fed as a prefix LM (seqio's PrefixLMFeatureConverter: loss
  on the targets only, inputs and targets packed into one sequence)."""
  name = "decoder_only"
  config_class = PaLMConfig
  feature_converter = "prefix_lm"
  architecture = "decoder-only"

  def build(self, config: PaLMConfig) -> nn.Module:
    return DecoderOnlyLM(config)

  def init_inputs(self, config: PaLMConfig, batch: int = 1, length: int = 8) -> dict[str, Array]:
    return {"decoder_input_tokens": jnp.ones((batch, length), jnp.int32)}

  def plan_lengths(self, task_feature_lengths) -> tuple[int, int]:
    return 0, int(task_feature_lengths.get("inputs", 0)) + int(task_feature_lengths["targets"])

  def activation_layout(self, config: PaLMConfig, input_length: int, target_length: int) -> ActivationLayout:
    del input_length  # decoder-only: inputs and targets are one packed sequence of target_length
    t = target_length
    return ActivationLayout(
        stacks=(Stack(config.num_layers, t, (Attention(t, t, config.num_kv_heads),), other=2),),
        saved_activations=0, saved_float32=t * t,  # the [B, 1, L, L] float32 mask bias
        logits_length=t, logits_float32=False,      # tied embedding: logits in the activation dtype
        float32_attention_logits=True, recompute_fuses_softmax_cast=False, layer_phase_copies=2)

  def param_count(self, config: PaLMConfig) -> int:
    d, h, k, v = config.emb_dim, config.num_heads, config.head_dim, config.vocab_size
    layer = 2 * d * h * k + 2 * d * config.num_kv_heads * k + mlp_params(config) + d
    return v * d + config.num_layers * layer + d

  def forward_flops(self, config: PaLMConfig, input_length: int, target_length: int) -> float:
    """One sequence of `input_length + target_length` tokens (the trainer passes 0 inputs
    and the packed length)."""
    d, h, k, v = config.emb_dim, config.num_heads, config.head_dim, config.vocab_size
    length = input_length + target_length
    qkvo = 2 * d * h * k + 2 * d * config.num_kv_heads * k
    per_token = config.num_layers * (2 * qkvo + 2 * mlp_params(config) + 4 * length * h * k) + 2 * d * v
    return float(length * per_token)

  def decode_hooks(self, module: nn.Module) -> DecoderOnlyHooks:
    return DecoderOnlyHooks(module)
