"""T5 v1.1 / Flan-T5 encoder-decoder assembled from `layers`.

Parameter names follow T5X (`encoder/layers_0/attention/query/kernel`, ...), so
users who know T5X checkpoints recognise them and converters stay simple. With
`scan_layers=True` (T5X's scalable_t5 layout) each stack's layers are one `nn.scan`
and their parameters are stacked under `encoder/layers/...`, `decoder/layers/...` with
a leading `layers` axis; `models.stack_layers` / `unstack_layers` convert between the
two, and checkpoints load into either (`checkpoints.load_params`).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp

from flan_jax.models import layers
from flan_jax.models.family import (ActivationLayout, Attention, Family, ModelConfig, Stack, layer_stack,
                                    mlp_params, run_stack)
from flan_jax.models.layers import Array, constrain

PyTree = Any

@gin.configurable
@dataclasses.dataclass(frozen=True)
class T5Config(ModelConfig):
  """Dimensions of a T5 v1.1 model. Sizes differ only in these numbers (gin/models/t5_1_1)."""
  vocab_size: int = 32128
  emb_dim: int = 512
  num_heads: int = 6
  head_dim: int = 64
  mlp_dim: int = 1024
  mlp_activations: tuple[str, ...] = ("gelu", "linear")
  num_encoder_layers: int = 8
  num_decoder_layers: int = 8
  logits_via_embedding: bool = False
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  scan_layers: bool = False  # one nn.scan per stack: compile time flat in depth (T5X scalable_t5)
  # T5X's network.T5Config.float32_attention_logits (False there and in its T5 v1.1 gin files):
  # attention logits, bias and softmax in the activation dtype. True upcasts the logits to
  # float32 after the q.k dot (see layers.Attention). Same numbers for float32 models.
  float32_attention_logits: bool = False
  # One relative-position table per layer (T5X's scalable_t5 and umT5 networks) instead of one
  # per stack shared by its layers (T5 v1.1, the released Flan-T5): `encoder/layers_i/relpos_bias`.
  relpos_per_layer: bool = False


def _relpos(cfg: T5Config, bidirectional: bool) -> layers.RelativePositionBias:
  return layers.RelativePositionBias(cfg.num_heads, cfg.relative_attention_num_buckets,
                                     cfg.relative_attention_max_distance, bidirectional=bidirectional,
                                     name="relpos_bias")


def _self_attention_bias(cfg: T5Config, table_HxN: Array, segment_ids_BxL: Array, causal: bool) -> Array:
  """Relative-position bias plus packing (and causal) mask, [B, H, L, L] float32.

  Built inside each layer from the small table and the segment ids, as T5X builds its
  shared table's bias per layer: under remat it is recomputed in the backward pass, so no
  [B, H, L, L] bias, nor its gradient, stays live across the stack."""
  l = segment_ids_BxL.shape[1]
  mask = layers.segment_mask(segment_ids_BxL, segment_ids_BxL)
  if causal:
    mask = mask & layers.causal_mask(l)
  return (layers.relative_bias(table_HxN, l, l, not causal, cfg.relative_attention_max_distance)
          + layers.mask_to_bias(mask))


def _self_attention_flash(cfg: T5Config, table_HxN: Array, segment_ids_BxL: Array, causal: bool,
                          platform: str) -> layers.FlashMask:
  """The flash kernels' form of `_self_attention_bias`: the [H, L, L] position bias shared by
  the batch, with the mask left to the segment ids (and causality)."""
  l = segment_ids_BxL.shape[1]
  bias = layers.relative_bias(table_HxN, l, l, not causal, cfg.relative_attention_max_distance)[0]
  return layers.FlashMask(segment_ids_BxL, segment_ids_BxL, bias, causal=causal, platform=platform)


class EncoderLayer(nn.Module):
  config: T5Config

  @nn.compact
  def __call__(self, x_BxLxD: Array, relpos_HxN: Array, segment_ids_BxL: Array, _unused: Any = None,
               deterministic: bool = True, decode: bool = False) -> tuple[Array, None]:
    """`relpos_HxN`: the encoder's relative-position table (None: this layer's own, with
    `relpos_per_layer`); `segment_ids_BxL`: packing ids."""
    cfg, dt = self.config, self.config.activation_dtype
    if cfg.relpos_per_layer:
      relpos_HxN = _relpos(cfg, bidirectional=True).table()
    flash = layers.flash_platform(cfg.attention_kernel)
    bias = (_self_attention_flash(cfg, relpos_HxN, segment_ids_BxL, False, flash) if flash else
            _self_attention_bias(cfg, relpos_HxN, segment_ids_BxL, causal=False))
    y = layers.RMSNorm(cfg.layer_norm_epsilon, dt, name="pre_attention_layer_norm")(x_BxLxD)
    y = layers.Attention(cfg.num_heads, cfg.head_dim, dropout_rate=cfg.dropout_rate, dtype=dt,
                         float32_logits=cfg.float32_attention_logits,
                         name="attention")(y, y, bias, deterministic=deterministic)
    x_BxLxD = x_BxLxD + nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(y, deterministic=deterministic)
    y = layers.RMSNorm(cfg.layer_norm_epsilon, dt, name="pre_mlp_layer_norm")(x_BxLxD)
    y = layers.GatedMlp(cfg.mlp_dim, cfg.mlp_activations, cfg.dropout_rate, dt, name="mlp")(y, deterministic)
    x_BxLxD = x_BxLxD + nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(y, deterministic=deterministic)
    return constrain(x_BxLxD, ("batch", "length", cfg.residual_axis)), None


class DecoderLayer(nn.Module):
  config: T5Config

  @nn.compact
  def __call__(self, x_BxLxD: Array, self_bias: Array, encoded_BxSxD: Array, cross_bias: Any,
               deterministic: bool = True, decode: bool = False) -> tuple[Array, None]:
    """Training: `self_bias` is the decoder's relative-position table [H, N] and `cross_bias`
    the pair (decoder segment ids [B, L], encoder segment ids [B, S]); the biases are built
    here (see `_self_attention_bias`). Decoding: both are ready biases [., H, 1, S].
    With `relpos_per_layer` the layer's own table replaces the stack's: training passes None
    for it, decoding `(query offset or None at cache init, the cache's slot positions)`."""
    cfg, dt = self.config, self.config.activation_dtype
    if cfg.relpos_per_layer:
      relpos = _relpos(cfg, bidirectional=False)
      if not decode:
        self_bias = relpos.table()
      else:
        query_offset, slots = self_bias
        l = x_BxLxD.shape[1]
        self_bias = relpos(l, l) if query_offset is None else relpos(1, slots.shape[0], query_offset=query_offset)
    if not decode:
      segment_ids_BxL, encoder_segment_ids_BxS = cross_bias
      flash = layers.flash_platform(cfg.attention_kernel)
      if flash:
        self_bias = _self_attention_flash(cfg, self_bias, segment_ids_BxL, True, flash)
        cross_bias = layers.FlashMask(segment_ids_BxL, encoder_segment_ids_BxS, platform=flash)
      else:
        self_bias = _self_attention_bias(cfg, self_bias, segment_ids_BxL, causal=True)
        cross_bias = layers.mask_to_bias(layers.segment_mask(segment_ids_BxL, encoder_segment_ids_BxS))
    drop = lambda v: nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(v, deterministic=deterministic)
    y = layers.RMSNorm(cfg.layer_norm_epsilon, dt, name="pre_self_attention_layer_norm")(x_BxLxD)
    y = layers.Attention(cfg.num_heads, cfg.head_dim, dropout_rate=cfg.dropout_rate, dtype=dt,
                         float32_logits=cfg.float32_attention_logits,
                         name="self_attention")(y, y, self_bias, deterministic=deterministic, decode=decode)
    x_BxLxD = x_BxLxD + drop(y)
    y = layers.RMSNorm(cfg.layer_norm_epsilon, dt, name="pre_cross_attention_layer_norm")(x_BxLxD)
    y = layers.Attention(cfg.num_heads, cfg.head_dim, dropout_rate=cfg.dropout_rate, dtype=dt,
                         float32_logits=cfg.float32_attention_logits,
                         name="encoder_decoder_attention")(y, encoded_BxSxD, cross_bias, deterministic=deterministic,
                                                            decode=decode, static_kv=True)
    x_BxLxD = x_BxLxD + drop(y)
    y = layers.RMSNorm(cfg.layer_norm_epsilon, dt, name="pre_mlp_layer_norm")(x_BxLxD)
    y = layers.GatedMlp(cfg.mlp_dim, cfg.mlp_activations, cfg.dropout_rate, dt, name="mlp")(y, deterministic)
    x_BxLxD = x_BxLxD + drop(y)
    return constrain(x_BxLxD, ("batch", "length", cfg.residual_axis)), None


class Encoder(nn.Module):
  config: T5Config
  shared_embedding: nn.Module

  @nn.compact
  def __call__(self, tokens_BxS: Array, segment_ids_BxS: Array, deterministic: bool) -> Array:
    cfg, dt = self.config, self.config.activation_dtype
    x = self.shared_embedding(tokens_BxS)
    x = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x, deterministic=deterministic)
    relpos_HxN = None if cfg.relpos_per_layer else _relpos(cfg, bidirectional=True).table()
    block = layer_stack(EncoderLayer, cfg, cfg.num_encoder_layers)
    x = run_stack(block, cfg, cfg.num_encoder_layers, x, relpos_HxN, segment_ids_BxS, None, deterministic, False)
    x = layers.RMSNorm(cfg.layer_norm_epsilon, dt, name="encoder_norm")(x)
    return nn.Dropout(cfg.dropout_rate)(x, deterministic=deterministic)  # elementwise, as T5X


class T5Decoder(nn.Module):
  config: T5Config
  shared_embedding: nn.Module

  @nn.compact
  def __call__(self, encoded_BxSxD: Array, encoder_segment_ids_BxS: Array, tokens_BxL: Array,
               segment_ids_BxL: Array, deterministic: bool, decode: bool = False) -> Array:
    cfg, dt = self.config, self.config.activation_dtype
    l = tokens_BxL.shape[1]
    x = self.shared_embedding(tokens_BxL)
    x = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x, deterministic=deterministic)
    relpos = None if cfg.relpos_per_layer else _relpos(cfg, bidirectional=False)
    if decode:
      # One token per step; the cache (sized at init) holds earlier keys/values and
      # the Attention layers mask unwritten slots. Bias row = this step's position.
      is_init = not self.has_variable("cache", "position")
      pos = self.variable("cache", "position", lambda: jnp.array(0, jnp.int32))
      # Its shape carries the cache length (static) into later steps.
      slots = self.variable("cache", "slots", lambda: jnp.arange(l, dtype=jnp.int32))
      if relpos is None:  # each layer builds its bias from its own table
        self_bias = (None if is_init else pos.value, slots.value)
      elif is_init:
        self_bias = relpos(l, l)
      else:
        self_bias = relpos(1, slots.value.shape[0], query_offset=pos.value)
      if not is_init:
        pos.value = pos.value + 1
      cross_bias = layers.mask_to_bias(
          layers.make_attention_mask(jnp.ones(tokens_BxL.shape, bool), encoder_segment_ids_BxS > 0))
    else:  # the layers build their biases (DecoderLayer)
      self_bias = None if relpos is None else relpos.table()
      cross_bias = (segment_ids_BxL, encoder_segment_ids_BxS)
    block = layer_stack(DecoderLayer, cfg, cfg.num_decoder_layers)
    x = run_stack(block, cfg, cfg.num_decoder_layers, x, self_bias, encoded_BxSxD, cross_bias,
                   deterministic, decode)
    x = layers.RMSNorm(cfg.layer_norm_epsilon, dt, name="decoder_norm")(x)
    x = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x, deterministic=deterministic)
    if cfg.logits_via_embedding:
      logits = self.shared_embedding.attend(x) / jnp.sqrt(x.shape[-1]).astype(dt)
    else:
      # float32 output projection (T5X), truncated-normal init.
      logits = layers.DenseGeneral((cfg.vocab_size,), ("embed", "vocab"), truncated=True, dtype=jnp.float32,
                                   name="logits_dense")(x)
    return constrain(logits.astype(jnp.float32), ("batch", "length", "vocab"))


class Transformer(nn.Module):
  """Encoder-decoder. `__call__` takes the features of seqio's EncDecFeatureConverter."""
  config: T5Config

  def setup(self):
    cfg = self.config
    self.token_embedder = layers.Embed(cfg.vocab_size, cfg.emb_dim, cfg.activation_dtype, name="token_embedder")
    self.encoder = Encoder(cfg, self.token_embedder, name="encoder")
    self.decoder = T5Decoder(cfg, self.token_embedder, name="decoder")

  def encode(self, encoder_input_tokens: Array, encoder_segment_ids: Array | None = None,
             deterministic: bool = True) -> Array:
    if encoder_segment_ids is None:
      encoder_segment_ids = (encoder_input_tokens > 0).astype(jnp.int32)
    return self.encoder(encoder_input_tokens, encoder_segment_ids, deterministic)

  def decode(self, encoded: Array, encoder_segment_ids: Array, decoder_input_tokens: Array,
             decoder_segment_ids: Array | None = None, deterministic: bool = True, decode: bool = False) -> Array:
    if decoder_segment_ids is None:
      decoder_segment_ids = jnp.ones(decoder_input_tokens.shape, jnp.int32)
    return self.decoder(encoded, encoder_segment_ids, decoder_input_tokens, decoder_segment_ids,
                        deterministic, decode)

  def __call__(self, encoder_input_tokens: Array, decoder_input_tokens: Array,
               encoder_segment_ids: Array | None = None, decoder_segment_ids: Array | None = None,
               deterministic: bool = True, **unused_features) -> Array:
    """Logits [B, L, V] (float32) for teacher-forced decoder inputs."""
    if encoder_segment_ids is None:
      encoder_segment_ids = (encoder_input_tokens > 0).astype(jnp.int32)
    if decoder_segment_ids is None:
      # Unpacked batch: decoder positions are real up to the last non-pad input;
      # the loss weights (not this mask) decide what counts.
      decoder_segment_ids = jnp.ones(decoder_input_tokens.shape, jnp.int32)
    encoded = self.encode(encoder_input_tokens, encoder_segment_ids, deterministic)
    return self.decode(encoded, encoder_segment_ids, decoder_input_tokens, decoder_segment_ids, deterministic)


# ----------------------------------------------------------------------------------------
# The family object: what the trainer, decoder, planner and FLOPs accounting ask.


class EncoderDecoderHooks:
  """T5: the encoder runs once per batch; the decoder prefix is the start token 0."""
  generation_error = None
  encoder_decoder = True  # T5X's default decode: beam search with one beam

  def __init__(self, model: nn.Module):
    self.model = model

  def context(self, params: PyTree, inputs_BxS: Array) -> PyTree:
    segment_ids_BxS = (inputs_BxS > 0).astype(jnp.int32)
    encoded_BxSxD = self.model.apply({"params": params}, inputs_BxS, segment_ids_BxS, method="encode")
    return {"encoded": encoded_BxSxD, "segment_ids": segment_ids_BxS}

  def prefix(self, inputs_BxS: Array) -> tuple[Array, Array]:
    b = inputs_BxS.shape[0]
    return jnp.zeros((b, 1), jnp.int32), jnp.ones((b,), jnp.int32)

  def cache_shapes(self, batch: int, input_len: int, length: int) -> PyTree:
    cfg = self.model.config

    def init():
      encoded = jnp.zeros((batch, input_len, cfg.emb_dim), cfg.activation_dtype)
      return self.model.init(jax.random.key(0), encoded, jnp.ones((batch, input_len), jnp.int32),
                             jnp.zeros((batch, length), jnp.int32), decode=True, method="decode")["cache"]
    return jax.eval_shape(init)

  def step(self, params: PyTree, context: PyTree, tokens_Bx1: Array, index: Array, cache: PyTree):
    logits, state = self.model.apply({"params": params, "cache": cache}, context["encoded"],
                                     context["segment_ids"], tokens_Bx1, decode=True, mutable=["cache"],
                                     method="decode")
    return logits[:, 0], state["cache"]

  def target_logprobs(self, params: PyTree, inputs_BxS: Array, targets_BxL: Array) -> Array:
    """log p(targets[:, j] | inputs, targets[:, :j]) [B, L], teacher forced."""
    decoder_inputs_BxL = jnp.pad(targets_BxL[:, :-1], ((0, 0), (1, 0)))
    logits_BxLxV = self.model.apply({"params": params}, inputs_BxS, decoder_inputs_BxL)
    logp = jax.nn.log_softmax(logits_BxLxV)
    return jnp.take_along_axis(logp, targets_BxL[..., None], axis=-1)[..., 0]


class EncoderDecoder(Family):
  """T5 v1.1 / Flan-T5: seqio's EncDecFeatureConverter feeds inputs to the encoder."""
  name = "encoder_decoder"
  config_class = T5Config
  feature_converter = "encdec"
  architecture = "encoder-decoder"

  def build(self, config: T5Config) -> nn.Module:
    return Transformer(config)

  def init_inputs(self, config: T5Config, batch: int = 1, length: int = 8) -> dict[str, Array]:
    tokens = jnp.ones((batch, length), jnp.int32)
    return {"encoder_input_tokens": tokens, "decoder_input_tokens": tokens}

  def plan_lengths(self, task_feature_lengths) -> tuple[int, int]:
    return int(task_feature_lengths.get("inputs", 0)), int(task_feature_lengths["targets"])

  def activation_layout(self, config: T5Config, input_length: int, target_length: int) -> ActivationLayout:
    s, t, h = input_length, target_length, config.num_heads
    return ActivationLayout(
        stacks=(Stack(config.num_encoder_layers, s, (Attention(s, s, h),), other=3),
                # cross-attention K/V are computed on the encoder's s tokens
                Stack(config.num_decoder_layers, t, (Attention(t, t, h), Attention(t, s, h)), other=4)),
        saved_activations=s * config.emb_dim,    # the encoder output
        saved_float32=s * s + t * t + t * s,     # mask / position biases
        logits_length=t, logits_float32=not config.logits_via_embedding,
        float32_attention_logits=config.float32_attention_logits,
        # XLA:TPU fuses the softmax's cast into the matmul that reads it (scanned Flan-T5 compiles),
        # and writes the [B, H, S, S] attention buffers' gradients over them.
        recompute_fuses_softmax_cast=True, layer_phase_copies=1)

  def param_count(self, config: T5Config) -> int:
    d, h, k, v = config.emb_dim, config.num_heads, config.head_dim, config.vocab_size
    relpos = h * config.relative_attention_num_buckets
    enc_layer = 4 * d * h * k + mlp_params(config) + 2 * d
    dec_layer = 8 * d * h * k + mlp_params(config) + 3 * d
    logits = 0 if config.logits_via_embedding else d * v
    tables = (config.num_encoder_layers + config.num_decoder_layers) if config.relpos_per_layer else 2
    return (v * d + config.num_encoder_layers * enc_layer + config.num_decoder_layers * dec_layer
            + 2 * d + tables * relpos + logits)

  def forward_flops(self, config: T5Config, input_length: int, target_length: int) -> float:
    """`input_length` encoder tokens, `target_length` decoder tokens (flops.py's conventions)."""
    d, h, k, v = config.emb_dim, config.num_heads, config.head_dim, config.vocab_size
    mlp = 2 * mlp_params(config)
    s, t = input_length, target_length
    enc_token = 2 * 4 * d * h * k + mlp + 4 * s * h * k
    dec_token = 2 * 6 * d * h * k + mlp + 4 * t * h * k + 4 * s * h * k  # self qkvo + cross q,o
    cross_kv = 2 * 2 * d * h * k * s  # cross-attention keys/values of the encoder output, per layer
    return float(config.num_encoder_layers * s * enc_token
                 + config.num_decoder_layers * (t * dec_token + cross_kv) + t * 2 * d * v)

  def decode_hooks(self, module: nn.Module) -> EncoderDecoderHooks:
    return EncoderDecoderHooks(module)
