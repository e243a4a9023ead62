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

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp

from flan_jax.models import layers
from flan_jax.models.layers import Array, constrain
from flan_jax.models.t5 import REMAT_POLICIES


@gin.configurable
@dataclasses.dataclass(frozen=True)
class PaLMConfig:
  """Dimensions of a PaLM decoder. Sizes differ only in these numbers (gin/models/palm).

  `prefix_bidirectional`: positions marked by `decoder_causal_attention` (the inputs
  of seqio's PrefixLMFeatureConverter) attend to each other in both directions.
  `scan_layers`: one `nn.scan` over a stacked layer (compile time flat in depth).
  The z-loss belongs to the loss function, not to the model.
  """
  vocab_size: int = 256_000
  emb_dim: int = 4096
  num_heads: int = 16
  num_kv_heads: int = 1
  head_dim: int = 256
  num_layers: int = 32
  mlp_dim: int = 16384
  mlp_activations: tuple[str, ...] = ("silu", "linear")
  dropout_rate: float = 0.0
  dtype: str = "float32"
  layer_norm_epsilon: float = 1e-6
  remat_policy: str = "none"
  scan_layers: bool = False
  prefix_bidirectional: bool = False

  def __post_init__(self):
    object.__setattr__(self, "mlp_activations", tuple(self.mlp_activations))
    if self.remat_policy not in REMAT_POLICIES:
      raise ValueError(f"PaLMConfig.remat_policy={self.remat_policy!r}; choose from {sorted(REMAT_POLICIES)}")
    if self.num_heads % self.num_kv_heads:
      raise ValueError(f"PaLMConfig.num_kv_heads={self.num_kv_heads} must divide num_heads={self.num_heads}")

  @property
  def activation_dtype(self) -> jnp.dtype:
    return jnp.dtype(self.dtype)


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
    return constrain(x_BxLxD + branch_BxLxD, ("batch", "length", "embed")), None


def _layer_stack(cfg: PaLMConfig):
  """The layer class, rematerialised and/or scanned as the config asks."""
  block = DecoderLayer
  if cfg.remat_policy != "none":
    # static_argnums count `self` as 0: (deterministic, decode) are arguments 4 and 5.
    block = nn.remat(block, policy=REMAT_POLICIES[cfg.remat_policy], prevent_cse=not cfg.scan_layers,
                     static_argnums=(4, 5))
  if cfg.scan_layers:
    block = nn.scan(block, variable_axes={"params": 0, "cache": 0},
                    split_rngs={"params": True, "dropout": True},
                    in_axes=(nn.broadcast, nn.broadcast, nn.broadcast, nn.broadcast),
                    length=cfg.num_layers, metadata_params={nn.PARTITION_NAME: "layers"})
  return block


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


class Decoder(nn.Module):
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
      bias = attention_bias(segment_ids_BxL, decoder_causal_attention, cfg.prefix_bidirectional)

    embedder = layers.Embed(cfg.vocab_size, cfg.emb_dim, dt, name="token_embedder")
    x_BxLxD = embedder(tokens_BxL)
    x_BxLxD = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x_BxLxD, deterministic=deterministic)

    block = _layer_stack(cfg)
    if cfg.scan_layers:
      x_BxLxD, _ = block(cfg, name="layers")(x_BxLxD, bias, positions_BxL, deterministic, decode)
    else:
      for i in range(cfg.num_layers):
        x_BxLxD, _ = block(cfg, name=f"layers_{i}")(x_BxLxD, bias, positions_BxL, deterministic, decode)

    x_BxLxD = layers.RMSNorm(cfg.layer_norm_epsilon, dt, name="decoder_norm")(x_BxLxD)
    x_BxLxD = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x_BxLxD, deterministic=deterministic)
    logits_BxLxV = embedder.attend(x_BxLxD) / jnp.sqrt(cfg.emb_dim).astype(dt)
    return constrain(logits_BxLxV.astype(jnp.float32), ("batch", "length", "vocab"))


def param_count(config: PaLMConfig) -> int:
  """Number of parameters, from abstract shapes (nothing is allocated)."""
  shapes = jax.eval_shape(
      lambda: Decoder(config).init(jax.random.key(0), jnp.zeros((1, 1), jnp.int32))["params"])
  return sum(math.prod(x.shape) for x in jax.tree.leaves(nn.unbox(shapes)))
