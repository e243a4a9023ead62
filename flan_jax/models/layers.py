"""Building blocks shared by the T5 encoder-decoder and the PaLM-style decoder.

Shape letters used in names (as in nanodo): B batch, L query length, S key/value
length, D model width (``embed``), H heads, K head dim (``kv``), F feed-forward
width (``mlp``), V vocabulary. Every parameter is created with logical axis names;
``flan_jax.core.partitioning`` maps those names onto the device mesh.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from flan_jax.models import flash_attention as fa

Array = jax.Array
Dtype = jnp.dtype

# The additive bias of masked attention logits: T5X's -1e10 (t5x/examples/t5/layers.py,
# `combine_masks` -> bias). Finite, so fully masked rows (padding) give a uniform softmax
# instead of NaNs. Decoding's log-probability floor is another number: `decoding.NEG_INF`.
MASK_BIAS = -1e10


def _param(module: nn.Module, name: str, init: Callable, shape: Sequence[int], axes: Sequence[str | None],
           dtype: Dtype) -> Array:
  """A parameter with logical axis names attached."""
  return module.param(name, nn.with_logical_partitioning(init, tuple(axes)), tuple(shape), dtype)


def constrain(x: Array, axes: Sequence[str | None]) -> Array:
  """Activation sharding hint by logical name (a no-op outside a rules context)."""
  return nn.with_logical_constraint(x, tuple(axes))


class RMSNorm(nn.Module):
  """Root-mean-square layer norm with a learned scale and no bias or centering."""
  epsilon: float = 1e-6
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_BxLxD: Array) -> Array:
    x = x_BxLxD.astype(jnp.float32)
    var = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
    x = x * jax.lax.rsqrt(var + self.epsilon)
    scale = _param(self, "scale", nn.initializers.ones, (x.shape[-1],), ("embed",), self.param_dtype)
    return (x * scale.astype(jnp.float32)).astype(self.dtype)


class Embed(nn.Module):
  """Token embedding table [V, D]; `attend` gives logits against the same table."""
  num_embeddings: int
  features: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  embedding_init: Callable = nn.initializers.normal(stddev=1.0)

  def setup(self):
    self.embedding = _param(self, "embedding", self.embedding_init, (self.num_embeddings, self.features),
                            ("vocab", "embed"), self.param_dtype)

  def __call__(self, tokens_BxL: Array) -> Array:
    x = jnp.take(self.embedding, tokens_BxL, axis=0).astype(self.dtype)
    return constrain(x, ("batch", "length", "embed"))

  def attend(self, x_BxLxD: Array) -> Array:
    return jnp.einsum("bld,vd->blv", x_BxLxD, self.embedding.astype(self.dtype))


class DenseGeneral(nn.Module):
  """Bias-free dense layer contracting the last `len(in_axes)` input dims.

  `in_features` / `out_features` are tuples; `axes` names the kernel's dims (input
  dims first). Kernel init is variance scaling over the fan-in, times `init_scale`:
  normal (T5X's attention kernels) or, with `truncated`, a normal truncated at two
  standard deviations and rescaled to the same std (T5X's MLP and logits kernels).
  """
  out_features: tuple[int, ...]
  axes: tuple[str, ...]
  num_in_dims: int = 1
  init_scale: float = 1.0
  truncated: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    in_shape = x.shape[-self.num_in_dims:]
    kernel_shape = tuple(in_shape) + tuple(self.out_features)
    fan_in = int(np.prod(in_shape))
    std = self.init_scale * fan_in ** -0.5
    # std of a unit normal truncated to [-2, 2]: 0.8796; divided out as variance_scaling does.
    init = (nn.initializers.truncated_normal(stddev=std / 0.87962566103423978) if self.truncated
            else nn.initializers.normal(stddev=std))
    kernel = _param(self, "kernel", init, kernel_shape, self.axes, self.param_dtype)
    # One plain [tokens, fan_in] x [fan_in, fan_out] matmul. Contracting several dims at
    # once (or leaving batch and length apart) gives the backward pass dots over two
    # contracting dims, which XLA:CPU lowers with a transposed copy of the activation
    # gradient per layer (~1.3x slower T5 train steps); the reshapes are free bitcasts.
    batch_shape = x.shape[:x.ndim - self.num_in_dims]
    x_NxI = x.astype(self.dtype).reshape(-1, fan_in)
    kernel_IxO = kernel.astype(self.dtype).reshape(fan_in, -1)
    y_NxO = jax.lax.dot_general(x_NxI, kernel_IxO, (((1,), (0,)), ((), ())))
    return y_NxO.reshape(batch_shape + tuple(self.out_features))


def _activation(name: str) -> Callable[[Array], Array]:
  if name == "linear":
    return lambda x: x
  if name == "gelu":  # tanh approximation, as T5X (flax nn.gelu) and HF `gelu_new`.
    return functools.partial(nn.gelu, approximate=True)
  if name in ("silu", "swish"):
    return nn.silu
  if name == "relu":
    return nn.relu
  raise ValueError(f"unknown MLP activation {name!r}; use one of gelu, silu, relu, linear")


class GatedMlp(nn.Module):
  """Feed-forward block; with activations ('gelu', 'linear') it is T5 v1.1's gated GELU,
  with ('silu', 'linear') PaLM's SwiGLU, with ('relu',) the original T5's."""
  mlp_dim: int
  activations: tuple[str, ...] = ("gelu", "linear")
  dropout_rate: float = 0.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_BxLxD: Array, deterministic: bool) -> Array:
    d = x_BxLxD.shape[-1]
    h_BxLxF = None
    for i, act in enumerate(self.activations):
      name = "wi" if len(self.activations) == 1 else f"wi_{i}"
      y = DenseGeneral((self.mlp_dim,), ("embed", "mlp"), truncated=True, dtype=self.dtype, name=name)(x_BxLxD)
      y = _activation(act)(y)
      h_BxLxF = y if h_BxLxF is None else h_BxLxF * y
    h_BxLxF = constrain(h_BxLxF, ("batch", "length", "mlp"))
    h_BxLxF = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))(h_BxLxF, deterministic=deterministic)
    return DenseGeneral((d,), ("mlp", "embed"), truncated=True, dtype=self.dtype, name="wo")(h_BxLxF)


# ----------------------------------------------------------------------------------------
# Position information: T5 relative-position buckets and rotary embeddings.


def relative_position_bucket(relative_position: np.ndarray, bidirectional: bool, num_buckets: int,
                             max_distance: int) -> np.ndarray:
  """T5's log-spaced buckets for `key_pos - query_pos` (numpy, static shapes)."""
  n = -relative_position
  ret = np.zeros_like(n)
  if bidirectional:
    num_buckets //= 2
    ret += (n < 0).astype(n.dtype) * num_buckets
    n = np.abs(n)
  else:
    n = np.maximum(n, 0)
  max_exact = num_buckets // 2
  is_small = n < max_exact
  n_large = np.maximum(n, max_exact).astype(np.float32)
  val_if_large = max_exact + (np.log(n_large / np.float32(max_exact)) / np.float32(np.log(max_distance / max_exact))
                              * (num_buckets - max_exact)).astype(n.dtype)
  val_if_large = np.minimum(val_if_large, num_buckets - 1)
  return ret + np.where(is_small, n, val_if_large)


def relative_bias(table_HxN: Array, qlen: int, klen: int, bidirectional: bool, max_distance: int,
                  query_offset: Array | None = None, dtype: Dtype = jnp.float32) -> Array:
  """Bias [1, H, qlen, klen] read from a relative-position table [H, buckets]; with
  `query_offset` (decoding) the query rows start there.

  A pure function of the small table, so a rematerialised layer can rebuild its bias in
  the backward pass instead of keeping a [H, L, S] bias (and its gradient) alive across
  the stack; T5X likewise builds the shared table's bias inside each layer.
  """
  full_q = klen if query_offset is not None else qlen
  rel = np.arange(klen)[None, :] - np.arange(full_q)[:, None]
  buckets = relative_position_bucket(rel, bidirectional, table_HxN.shape[1], max_distance)
  buckets_LxS = jnp.asarray(buckets, jnp.int32)
  if query_offset is not None:
    buckets_LxS = jax.lax.dynamic_slice_in_dim(buckets_LxS, query_offset, qlen, axis=0)
  # T5X's gather-free lookup: a bucket-major one-hot [N, L, S] contracted with the table.
  # A gather (and its scatter gradient) would put H minor-most, [L*S, H], which XLA:TPU pads
  # to 128 lanes: 2 GiB per 2048x2048 bias for H=6. HIGHEST keeps the table's
  # float32 values exact (one nonzero term per sum).
  iota_Nx1x1 = jax.lax.broadcasted_iota(jnp.int32, (table_HxN.shape[1], 1, 1), 0)
  onehot_NxLxS = (buckets_LxS[None] == iota_Nx1x1).astype(table_HxN.dtype)
  bias_HxLxS = jax.lax.dot_general(table_HxN, onehot_NxLxS, (((1,), (0,)), ((), ())),
                                   precision=jax.lax.Precision.HIGHEST)
  return bias_HxLxS[None].astype(dtype)


class RelativePositionBias(nn.Module):
  """One learned [H, buckets] table per stack, shared by the stack's layers.

  Biases depend only on `key_pos - query_pos`, so packed examples (whose offsets
  differ) see the same biases as unpacked ones once the segment mask is applied.
  `table()` hands the table itself to layers that build their bias with `relative_bias`.
  """
  num_heads: int
  num_buckets: int = 32
  max_distance: int = 128
  bidirectional: bool = True
  dtype: Dtype = jnp.float32

  def setup(self):
    # T5X: variance scaling, fan_avg, uniform (std sqrt(2 / (H + buckets)), ~0.2 for 32 + 16).
    init = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")
    self.rel_embedding = _param(self, "rel_embedding", init,
                                (self.num_heads, self.num_buckets), ("heads", "relpos_buckets"), jnp.float32)

  def table(self) -> Array:
    """The table [H, buckets] (float32)."""
    return self.rel_embedding

  def __call__(self, qlen: int, klen: int, query_offset: Array | None = None) -> Array:
    """Bias [1, H, qlen, klen]; with `query_offset` (decoding) the query rows start there."""
    return relative_bias(self.rel_embedding, qlen, klen, self.bidirectional, self.max_distance,
                         query_offset, self.dtype)


def rotary_embedding(x_BxLxHxK: Array, positions_BxL: Array, max_wavelength: float = 10_000.0) -> Array:
  """Rotary position embedding (rotate-half form) applied to queries or keys."""
  k = x_BxLxHxK.shape[-1]
  half = k // 2
  freq = 1.0 / (max_wavelength ** (np.arange(half, dtype=np.float32) * 2.0 / k))
  angle_BxLxK2 = positions_BxL[..., None].astype(jnp.float32) * freq
  sin, cos = jnp.sin(angle_BxLxK2)[:, :, None, :], jnp.cos(angle_BxLxK2)[:, :, None, :]
  x = x_BxLxHxK.astype(jnp.float32)
  x1, x2 = x[..., :half], x[..., half:]
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BxLxHxK.dtype)


# ----------------------------------------------------------------------------------------
# Masks.


def make_attention_mask(q_valid_BxL: Array, k_valid_BxS: Array) -> Array:
  """[B, 1, L, S] boolean: both positions hold real tokens."""
  return (q_valid_BxL[:, None, :, None] & k_valid_BxS[:, None, None, :])


def segment_mask(q_seg_BxL: Array, k_seg_BxS: Array) -> Array:
  """[B, 1, L, S]: same packed example and neither is padding (segment id 0)."""
  same = q_seg_BxL[:, None, :, None] == k_seg_BxS[:, None, None, :]
  return same & make_attention_mask(q_seg_BxL > 0, k_seg_BxS > 0)


def causal_mask(length: int) -> Array:
  return jnp.tril(jnp.ones((length, length), jnp.bool_))[None, None]


def mask_to_bias(mask: Array, dtype: Dtype = jnp.float32) -> Array:
  return jnp.where(mask, 0.0, MASK_BIAS).astype(dtype)


# ----------------------------------------------------------------------------------------
# Attention.

# `ModelConfig.attention_kernel`: "xla" (einsums and a softmax over [B, H, L, S]), "flash"
# (the Pallas kernels of `flash_attention`: compiled for TPU, interpreted on CPU, for tests)
# or "auto" (flash where the mesh's devices are TPUs, XLA elsewhere).
ATTENTION_KERNELS = ("auto", "xla", "flash")


def attention_platform(choice: str, platform: str) -> str | None:
  """The platform the flash kernels run for under `choice` on devices of `platform` ("tpu":
  compiled, "cpu": interpreted), or None for XLA attention."""
  if choice == "xla":
    return None
  if choice == "auto":
    return "tpu" if platform == "tpu" else None
  if platform not in ("tpu", "cpu"):
    raise ValueError(f"attention_kernel='flash' runs on TPU (and interpreted on CPU, for tests), not on "
                     f"{platform}; use 'auto' or 'xla'")
  return platform


def flash_platform(choice: str) -> str | None:
  """`attention_platform` for the devices being traced for: the platform of the mesh in
  context (a TPU topology when compiling ahead of time), else JAX's default backend."""
  mesh = jax.sharding.get_abstract_mesh()
  device = None if mesh.empty else getattr(mesh, "abstract_device", None)
  return attention_platform(choice, device.platform if device is not None else jax.default_backend())


@flax.struct.dataclass
class FlashMask:
  """What the flash kernels mask and add, passed where the XLA path takes its additive
  bias: packing segment ids (0 = padding), causality and an optional position bias
  [H, L, S] shared by the batch (T5's relative positions); `platform` is the one
  `flash_platform` chose ("tpu": compiled, "cpu": interpreted)."""
  q_segment_ids_BxL: Array
  kv_segment_ids_BxS: Array
  position_bias_HxLxS: Array | None = None
  causal: bool = flax.struct.field(pytree_node=False, default=False)
  platform: str = flax.struct.field(pytree_node=False, default="tpu")


def _mesh_axes(name: str, size: int, mesh) -> str | tuple[str, ...] | None:
  """The mesh axes the logical rules give `name`, where they divide `size` (else None: a
  dimension that does not split, such as a batch of one at initialisation, is replicated)."""
  axes = nn.logical_to_mesh_axes((name,))
  axes = None if axes is None else axes[0]
  names = (axes,) if isinstance(axes, str) else tuple(axes or ())
  return axes if names and size % math.prod(mesh.shape[a] for a in names) == 0 else None


def flash_attention(q_BxHxLxK: Array, k_BxGxSxK: Array, v_BxGxSxK: Array, mask: FlashMask) -> Array:
  """`flash_attention.flash_attention` on each device's shard of the batch and heads (a
  Pallas kernel is per-device code: under a mesh it runs inside `shard_map`, with the
  batch and heads split as the logical rules split them)."""
  b, h, g = q_BxHxLxK.shape[0], q_BxHxLxK.shape[1], k_BxGxSxK.shape[1]
  mesh = jax.sharding.get_abstract_mesh()
  heads = None if mesh.empty else _mesh_axes("heads", h, mesh)
  if heads is not None and 1 < g < h:  # grouped KV heads do not split with the query heads
    k_BxGxSxK, v_BxGxSxK = jnp.repeat(k_BxGxSxK, h // g, axis=1), jnp.repeat(v_BxGxSxK, h // g, axis=1)
    g = h
  kernel = functools.partial(fa.flash_attention, causal=mask.causal, interpret=mask.platform != "tpu")
  bias = mask.position_bias_HxLxS
  if mesh.empty:
    return kernel(q_BxHxLxK, k_BxGxSxK, v_BxGxSxK, bias, mask.q_segment_ids_BxL, mask.kv_segment_ids_BxS)
  P = jax.sharding.PartitionSpec
  batch = _mesh_axes("batch", b, mesh)
  q_spec = P(batch, heads, None, None)
  kv_spec = P(batch, heads if g == h else None, None, None)
  in_specs = (q_spec, kv_spec, kv_spec, None if bias is None else P(heads, None, None), P(batch, None),
              P(batch, None))
  return jax.shard_map(kernel, mesh=mesh, in_specs=in_specs, out_specs=q_spec, check_vma=False)(
      q_BxHxLxK, k_BxGxSxK, v_BxGxSxK, bias, mask.q_segment_ids_BxL, mask.kv_segment_ids_BxS)


# Logical axes of the KV cache [B, G, S, K] (partitioning.py maps them to mesh axes). A
# decoder reads the batch axis of every cache entry from these names.
CACHE_AXES = ("cache_batch", "cache_heads", "cache_length", "cache_kv")


class Attention(nn.Module):
  """Dot-product attention with optional multi-query (`num_kv_heads=1`), RoPE and KV cache.

  T5 convention: logits are not divided by sqrt(head_dim); the query projection's
  initialisation carries that factor instead (`scale_logits=False`). PaLM-style
  models set `scale_logits=True`.

  `float32_logits`: the q.k dot's output is upcast to float32 before the bias and the
  softmax (MaxText's `float32_logits`). False keeps logits, bias and softmax in `dtype`,
  as T5X's `dot_product_attention(float32_logits=False)`, the T5 v1.1 default. Either way
  the dot itself runs in `dtype`; with float32 activations the two are the same.

  Passing a `FlashMask` as the bias (outside decoding) runs the flash kernels on its
  platform (see `flash_platform`): logits in float32, the same parameters, and the same dropout. The
  dropout mask is one per (batch, head, key), shared by all queries, so dropping attention
  weights equals scaling the value rows: the kernels never see it.
  """
  num_heads: int
  head_dim: int
  num_kv_heads: int | None = None
  dropout_rate: float = 0.0
  scale_logits: bool = False
  use_rope: bool = False
  dtype: Dtype = jnp.float32
  float32_logits: bool = True

  @nn.compact
  def __call__(self, x_BxLxD: Array, kv_BxSxD: Array, bias: Array | None, *, deterministic: bool,
               decode: bool = False, positions_BxL: Array | None = None,
               kv_positions_BxS: Array | None = None, static_kv: bool = False) -> Array:
    """`static_kv` (cross-attention): with `decode`, the keys/values of `kv_BxSxD` are
    projected on the first decoding step, kept in the cache and read back on later steps
    (not at `init`, which only sizes the cache)."""
    h, k = self.num_heads, self.head_dim
    kvh = self.num_kv_heads or h
    d = x_BxLxD.shape[-1]
    q_scale = 1.0 if self.scale_logits else k ** -0.5  # std (D*K)^-0.5, as T5X
    kv_axis = "heads" if kvh == h else None  # a single shared KV head is replicated
    q = DenseGeneral((h, k), ("embed", "heads", "kv"), init_scale=q_scale, dtype=self.dtype, name="query")(x_BxLxD)
    cached_static = decode and static_kv and self.has_variable("cache", "cached_key")
    if cached_static:
      k_BxGxSxK = nn.unbox(self.get_variable("cache", "cached_key"))
      v_BxGxSxK = nn.unbox(self.get_variable("cache", "cached_value"))
    else:
      kk = DenseGeneral((kvh, k), ("embed", kv_axis, "kv"), dtype=self.dtype, name="key")(kv_BxSxD)
      v = DenseGeneral((kvh, k), ("embed", kv_axis, "kv"), dtype=self.dtype, name="value")(kv_BxSxD)
      if self.use_rope:
        kk = rotary_embedding(kk, positions_BxL if kv_positions_BxS is None else kv_positions_BxS)
      # Heads-major [B, G, S, K] (G = KV heads): the layout the attention dots read, so a
      # decoding cache kept in it is never transposed again.
      k_BxGxSxK, v_BxGxSxK = kk.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
      if decode and static_kv and not self.is_initializing():
        self.put_variable("cache", "cached_key", nn.LogicallyPartitioned(k_BxGxSxK, CACHE_AXES))
        self.put_variable("cache", "cached_value", nn.LogicallyPartitioned(v_BxGxSxK, CACHE_AXES))
    if self.use_rope:
      q = rotary_embedding(q, positions_BxL)
    q = constrain(q, ("batch", "length", "heads", "kv"))

    if decode and not static_kv:
      k_BxGxSxK, v_BxGxSxK, bias = self._update_cache(k_BxGxSxK, v_BxGxSxK, bias)

    if self.scale_logits:
      q = q * (k ** -0.5)
    if isinstance(bias, FlashMask):
      return self._flash(x_BxLxD, q, k_BxGxSxK, v_BxGxSxK, bias, deterministic)
    if kvh != h:  # grouped / multi-query: broadcast KV heads over query groups
      q = q.reshape(q.shape[:2] + (kvh, h // kvh, k))
      logits = jnp.einsum("blgqk,bgsk->bgqls", q, k_BxGxSxK).reshape(q.shape[0], h, q.shape[1], k_BxGxSxK.shape[2])
    else:
      logits = jnp.einsum("blhk,bhsk->bhls", q, k_BxGxSxK)
    if self.float32_logits:
      logits = logits.astype(jnp.float32)
    if bias is not None:
      logits = logits + bias.astype(logits.dtype)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    # One mask per (batch, head, key), shared by all queries: T5X's broadcast dims.
    weights = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))(weights, deterministic=deterministic)
    if kvh != h:
      w = weights.reshape(weights.shape[0], kvh, h // kvh, *weights.shape[2:])
      out = jnp.einsum("bgqls,bgsk->blgqk", w, v_BxGxSxK).reshape(x_BxLxD.shape[:2] + (h, k))
    else:
      out = jnp.einsum("bhls,bhsk->blhk", weights, v_BxGxSxK)
    out = constrain(out, ("batch", "length", "heads", "kv"))
    return DenseGeneral((d,), ("heads", "kv", "embed"), num_in_dims=2, dtype=self.dtype, name="out")(out)

  def _flash(self, x_BxLxD: Array, q_BxLxHxK: Array, k_BxGxSxK: Array, v_BxGxSxK: Array, mask: FlashMask,
             deterministic: bool) -> Array:
    h, g = q_BxLxHxK.shape[2], k_BxGxSxK.shape[1]
    if self.dropout_rate > 0 and not deterministic:
      b, s = v_BxGxSxK.shape[0], v_BxGxSxK.shape[2]
      # The XLA path's Dropout (same name, same shape [B, H, 1, S]): the same mask.
      keep_BxHx1xS = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))(
          jnp.ones((b, h, 1, s), self.dtype), deterministic=False)
      if g != h:  # the mask differs per query head: each head gets its own values (and keys, which
        # the kernels read with the same head index)
        k_BxGxSxK, v_BxGxSxK = jnp.repeat(k_BxGxSxK, h // g, axis=1), jnp.repeat(v_BxGxSxK, h // g, axis=1)
      v_BxGxSxK = v_BxGxSxK * keep_BxHx1xS[:, :, 0, :, None]
    out = flash_attention(q_BxLxHxK.transpose(0, 2, 1, 3), k_BxGxSxK, v_BxGxSxK, mask)
    out = constrain(out.transpose(0, 2, 1, 3), ("batch", "length", "heads", "kv"))
    return DenseGeneral((x_BxLxD.shape[-1],), ("heads", "kv", "embed"), num_in_dims=2, dtype=self.dtype,
                        name="out")(out)

  def _update_cache(self, k_BxGx1xK: Array, v_BxGx1xK: Array, bias: Array | None):
    """Writes this step's key/value at `cache_index`; returns the full cache [B, G, S, K] and
    a bias that hides the slots not yet written. The cache is sized by the first call (init)."""
    is_init = not self.has_variable("cache", "cached_key")
    zeros = nn.with_logical_partitioning(jnp.zeros, CACHE_AXES)
    cached_k = self.variable("cache", "cached_key", zeros, k_BxGx1xK.shape, k_BxGx1xK.dtype)
    cached_v = self.variable("cache", "cached_value", zeros, v_BxGx1xK.shape, v_BxGx1xK.dtype)
    index = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
    if is_init:
      return k_BxGx1xK, v_BxGx1xK, bias
    if k_BxGx1xK.shape[2] != 1:
      raise ValueError(f"decode=True feeds one token per step, got length {k_BxGx1xK.shape[2]}")
    i = index.value
    cached_k.value = jax.lax.dynamic_update_slice_in_dim(cached_k.value, k_BxGx1xK, i, axis=2)
    cached_v.value = jax.lax.dynamic_update_slice_in_dim(cached_v.value, v_BxGx1xK, i, axis=2)
    index.value = i + 1
    max_len = cached_k.value.shape[2]
    written = (jnp.arange(max_len) <= i)[None, None, None, :]
    step_bias = mask_to_bias(written)
    bias = step_bias if bias is None else bias + step_bias
    return cached_k.value, cached_v.value, bias
