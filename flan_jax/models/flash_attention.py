"""Flash attention for TPU in Pallas: softmax(q.k + bias, masked) . v without a [B, H, L, S]
score buffer in HBM, for T5 (relative-position bias, packing) and PaLM (causal, multi-query).

The forward kernel walks the key blocks of one query block with an online softmax and
keeps the row log-sum-exp; the backward pass recomputes the probabilities block by block
in two kernels, one for dq (and the bias gradient), one for dk and dv. Shapes:

  q [B, H, L, K], k and v [B, G, S, K] (G key/value heads divide H: multi-query G = 1),
  bias [H, L, S] shared by the batch (T5's position bias; its gradient is summed over the
  batch inside the dq kernel), segment ids [B, L] and [B, S] (0 = padding; a query sees
  the keys of its own segment), `causal` (key position <= query position).

Scaling of the logits is the caller's (T5 has none; PaLM scales q). Masked logits become
`layers.MASK_BIAS`, the XLA path's additive mask, so a fully masked row (padding) averages
every key it visits, as the XLA path's uniform softmax does; such rows carry no gradient.

Every `pallas_call` carries a `pl.CostEstimate`: the matmul and exp counts of its blocks
and the HBM bytes its pipeline moves (each block fetched again whenever its index changes
between consecutive grid steps). XLA's cost analysis and `planning.hlo` read them; without
one a Mosaic custom call would count as nothing.

`interpret=True` runs the same kernels on CPU (the Pallas interpreter) for tests.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

Array = jax.Array

# Masked logits (the XLA path's additive mask, `layers.MASK_BIAS`).
MASK_VALUE = -1e10
# Per-row statistics are kept broadcast over one vreg's 128 lanes, the layout a [rows, 1]
# column has on TPU anyway.
LANES = 128
SUBLANES = 8
# Block sizes: a [128, S] float32 bias slice and its gradient fit VMEM for S up to 4096
# beside double buffering; 512-wide key steps keep the MXU busy.
BLOCK_Q = 128
BLOCK_K = 512
# The dk/dv kernel holds a whole head's q, o, do, statistics and bias column [L, bk]: a
# narrower key block keeps it inside v4's 16 MiB of VMEM at L = 2048.
BLOCK_K_DKV = 256


@dataclasses.dataclass(frozen=True)
class _Spec:
  """The static description of one call (shapes, blocks, options)."""
  batch: int
  heads: int
  kv_heads: int
  q_len: int
  kv_len: int
  head_dim: int
  block_q: int
  block_k: int
  block_k_dkv: int
  causal: bool
  has_bias: bool
  has_segments: bool
  interpret: bool

  @property
  def group(self) -> int:
    return self.heads // self.kv_heads

  @property
  def nq(self) -> int:
    return self.q_len // self.block_q

  @property
  def nk(self) -> int:
    return self.kv_len // self.block_k

  @property
  def nk_dkv(self) -> int:
    return self.kv_len // self.block_k_dkv


def _block(length: int, preferred: int, interpret: bool) -> int:
  """The largest of `preferred` and its halves that divides `length` and that Mosaic can
  tile (a multiple of 128 lanes); else the whole length (one block). Interpreted, any
  divisor down to 8 will do, so that tests see several blocks at short lengths."""
  b = preferred
  while b >= SUBLANES:
    if length % b == 0 and (b % LANES == 0 or b == length or interpret):
      return b
    b //= 2
  return length


def _start(index, size: int):
  """Offset of block `index` (a static 0 when the loop has a single block)."""
  return index * size if isinstance(index, int) else pl.multiple_of(index * size, size)


def _loop(lo, hi, count: int, body, init):
  """`fori_loop(lo, hi)`; with a single block, the body once at block 0, so that its slices
  start at a static 0 (Mosaic must prove a dynamic lane offset a multiple of 128)."""
  if count == 1:
    return body(0, init)
  return jax.lax.fori_loop(lo, hi, body, init)


def _mask(spec: _Spec, q_start, k_start, qseg_ref, kseg_ref, bq: int, bk: int, k_slice=None):
  """[bq, bk] boolean of visible (query, key) pairs, or None when nothing is masked."""
  mask = None
  if spec.causal:
    rows = q_start + jax.lax.broadcasted_iota(jnp.int32, (bq, bk), 0)
    cols = k_start + jax.lax.broadcasted_iota(jnp.int32, (bq, bk), 1)
    mask = cols <= rows
  if spec.has_segments:
    qs = qseg_ref[:, :1]                                          # [bq, 1]
    ks = kseg_ref[:1, :] if k_slice is None else kseg_ref[:1, k_slice]  # [1, bk]
    same = (qs == ks) & (qs > 0) & (ks > 0)
    mask = same if mask is None else mask & same
  return mask


def _logits(q, k, bias):
  s = jax.lax.dot_general(q, k, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
  return s if bias is None else s + bias.astype(jnp.float32)


def _causal_key_blocks(spec: _Spec, qi):
  """Key blocks a causal query block `qi` reaches (all of them without `causal`)."""
  if not spec.causal:
    return spec.nk
  # lax.div: non-negative operands, and no sign fix-up for Mosaic to lower.
  return jnp.minimum(spec.nk, jax.lax.div((qi + 1) * spec.block_q + spec.block_k - 1, spec.block_k))


def _split(spec: _Spec, refs):
  refs = list(refs)
  bias = refs.pop(0) if spec.has_bias else None
  qseg, kseg = (refs.pop(0), refs.pop(0)) if spec.has_segments else (None, None)
  return bias, qseg, kseg, refs


# ----------------------------------------------------------------------------------------
# Forward: grid (H, query blocks, B); the bias slice [bq, S] stays in VMEM across the batch.


def _fwd_kernel(q_ref, k_ref, v_ref, *refs, spec: _Spec):
  bias_ref, qseg_ref, kseg_ref, (o_ref, lse_ref) = _split(spec, refs)
  qi = pl.program_id(1)
  bq, bk = spec.block_q, spec.block_k
  q = q_ref[...]

  def body(j, carry):
    m, l, acc = carry
    ks = _start(j, bk)
    bias = None if bias_ref is None else bias_ref[:, pl.ds(ks, bk)]
    s = _logits(q, k_ref[pl.ds(ks, bk), :], bias)
    mask = _mask(spec, qi * bq, ks, qseg_ref, kseg_ref, bq, bk, pl.ds(ks, bk))
    if mask is not None:
      s = jnp.where(mask, s, MASK_VALUE)
    m_new = jnp.maximum(m, jnp.max(s, axis=1, keepdims=True))
    alpha = jnp.exp(m - m_new)
    p = jnp.exp(s - m_new)
    l = alpha * l + jnp.sum(p, axis=1, keepdims=True)
    pv = jax.lax.dot_general(p.astype(v_ref.dtype), v_ref[pl.ds(ks, bk), :], (((1,), (0,)), ((), ())),
                             preferred_element_type=jnp.float32)
    return m_new, l, alpha * acc + pv

  init = (jnp.full((bq, 1), -jnp.inf, jnp.float32), jnp.zeros((bq, 1), jnp.float32),
          jnp.zeros((bq, spec.head_dim), jnp.float32))
  m, l, acc = _loop(0, _causal_key_blocks(spec, qi), spec.nk, body, init)
  o_ref[...] = (acc / l).astype(o_ref.dtype)
  lse_ref[...] = jnp.broadcast_to(m + jnp.log(l), (bq, LANES))


# ----------------------------------------------------------------------------------------
# dq and the bias gradient: grid (H, query blocks, B); the bias gradient's [bq, S] slice
# stays in VMEM while the batch (innermost, sequential) adds into it.


def _dq_kernel(q_ref, k_ref, v_ref, o_ref, do_ref, lse_ref, *refs, spec: _Spec):
  bias_ref, qseg_ref, kseg_ref, outs = _split(spec, refs)
  dq_ref = outs[0]
  dbias_ref = outs[1] if spec.has_bias else None
  qi, b = pl.program_id(1), pl.program_id(2)
  bq, bk = spec.block_q, spec.block_k
  q, do = q_ref[...], do_ref[...]
  lse = lse_ref[:, :1]
  delta = jnp.sum(do.astype(jnp.float32) * o_ref[...].astype(jnp.float32), axis=1, keepdims=True)

  if dbias_ref is not None:
    @pl.when(b == 0)
    def _():
      dbias_ref[...] = jnp.zeros_like(dbias_ref)

  def body(j, dq):
    ks = _start(j, bk)
    bias = None if bias_ref is None else bias_ref[:, pl.ds(ks, bk)]
    kj = k_ref[pl.ds(ks, bk), :]
    s = _logits(q, kj, bias)
    mask = _mask(spec, qi * bq, ks, qseg_ref, kseg_ref, bq, bk, pl.ds(ks, bk))
    if mask is not None:
      s = jnp.where(mask, s, MASK_VALUE)
    p = jnp.exp(s - lse)
    dp = jax.lax.dot_general(do, v_ref[pl.ds(ks, bk), :], (((1,), (1,)), ((), ())),
                             preferred_element_type=jnp.float32)
    ds = p * (dp - delta)
    if dbias_ref is not None:
      dbias_ref[:, pl.ds(ks, bk)] += ds
    return dq + jax.lax.dot_general(ds.astype(kj.dtype), kj, (((1,), (0,)), ((), ())),
                                    preferred_element_type=jnp.float32)

  dq = _loop(0, _causal_key_blocks(spec, qi), spec.nk, body, jnp.zeros((bq, spec.head_dim), jnp.float32))
  dq_ref[...] = dq.astype(dq_ref.dtype)


# ----------------------------------------------------------------------------------------
# dk, dv: grid (G, key blocks, B, H/G); the query heads that share a key/value head are
# the innermost, sequential axis and add into float32 scratch.


def _dkv_kernel(q_ref, k_ref, v_ref, o_ref, do_ref, lse_ref, *refs, spec: _Spec):
  bias_ref, qseg_ref, kseg_ref, rest = _split(spec, refs)
  dk_ref, dv_ref, dk_acc, dv_acc = rest
  kj_idx, r = pl.program_id(1), pl.program_id(3)
  bq, bk = spec.block_q, spec.block_k_dkv
  k, v = k_ref[...], v_ref[...]

  @pl.when(r == 0)
  def _():
    dk_acc[...] = jnp.zeros_like(dk_acc)
    dv_acc[...] = jnp.zeros_like(dv_acc)

  def body(i, carry):
    dk, dv = carry
    qs = _start(i, bq)
    qi, doi = q_ref[pl.ds(qs, bq), :], do_ref[pl.ds(qs, bq), :]
    bias = None if bias_ref is None else bias_ref[pl.ds(qs, bq), :]
    s = _logits(qi, k, bias)
    mask = _mask(spec, qs, kj_idx * bk, None if qseg_ref is None else qseg_ref.at[pl.ds(qs, bq), :],
                 kseg_ref, bq, bk)
    if mask is not None:
      s = jnp.where(mask, s, MASK_VALUE)
    p = jnp.exp(s - lse_ref[pl.ds(qs, bq), :][:, :1])
    dv = dv + jax.lax.dot_general(p.astype(doi.dtype).T, doi, (((1,), (0,)), ((), ())),
                                  preferred_element_type=jnp.float32)
    dp = jax.lax.dot_general(doi, v, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
    delta = jnp.sum(doi.astype(jnp.float32) * o_ref[pl.ds(qs, bq), :].astype(jnp.float32), axis=1,
                    keepdims=True)
    ds = p * (dp - delta)
    dk = dk + jax.lax.dot_general(ds.astype(qi.dtype).T, qi, (((1,), (0,)), ((), ())),
                                  preferred_element_type=jnp.float32)
    return dk, dv

  first = jax.lax.div(kj_idx * bk, bq) if spec.causal else 0
  zeros = jnp.zeros((bk, spec.head_dim), jnp.float32)
  dk, dv = _loop(first, spec.nq, spec.nq, body, (zeros, zeros))
  dk_acc[...] += dk
  dv_acc[...] += dv

  @pl.when(r == spec.group - 1)
  def _():
    dk_ref[...] = dk_acc[...].astype(dk_ref.dtype)
    dv_ref[...] = dv_acc[...].astype(dv_ref.dtype)


# ----------------------------------------------------------------------------------------
# Costs: flops and transcendentals of the blocks visited, bytes of the blocks fetched.


def _nbytes(shape, dtype) -> int:
  n = 1
  for d in shape:
    n *= d
  return n * jnp.dtype(dtype).itemsize


def _visited_fraction(spec: _Spec) -> float:
  """Share of (query block, key block) pairs a kernel computes: about half under `causal`."""
  if not spec.causal:
    return 1.0
  total = sum(min(spec.nk, -(-((i + 1) * spec.block_q) // spec.block_k)) for i in range(spec.nq))
  return total / (spec.nq * spec.nk)


def _cost(spec: _Spec, matmuls: int, exps: int, nbytes: int) -> pl.CostEstimate:
  pairs = spec.batch * spec.heads * spec.q_len * spec.kv_len * _visited_fraction(spec)
  return pl.CostEstimate(flops=int(2 * matmuls * pairs * spec.head_dim + 8 * pairs),
                         transcendentals=int(exps * pairs), bytes_accessed=int(nbytes))


def _seg_bytes(spec: _Spec, q_fetches: int, kv_fetches: int) -> int:
  if not spec.has_segments:
    return 0
  return (q_fetches * _nbytes((spec.batch, spec.q_len, LANES), jnp.int32)
          + kv_fetches * _nbytes((spec.batch, SUBLANES, spec.kv_len), jnp.int32))


def _fwd_bytes(spec: _Spec, dtype) -> int:
  b, h, l, s, k = spec.batch, spec.heads, spec.q_len, spec.kv_len, spec.head_dim
  qo = 2 * _nbytes((b, h, l, k), dtype)
  kv = 2 * h * spec.nq * _nbytes((b, s, k), dtype)      # whole K, V per (head, query block, row)
  bias = _nbytes((h, l, s), jnp.float32) if spec.has_bias else 0
  lse = _nbytes((b, h, l, LANES), jnp.float32)
  return qo + kv + bias + lse + _seg_bytes(spec, h, h * spec.nq)


def _dq_bytes(spec: _Spec, dtype) -> int:
  b, h, l, s, k = spec.batch, spec.heads, spec.q_len, spec.kv_len, spec.head_dim
  q_side = 4 * _nbytes((b, h, l, k), dtype)             # q, o, do in; dq out
  kv = 2 * h * spec.nq * _nbytes((b, s, k), dtype)
  bias = 2 * _nbytes((h, l, s), jnp.float32) if spec.has_bias else 0  # bias in, its gradient out
  lse = _nbytes((b, h, l, LANES), jnp.float32)
  return q_side + kv + bias + lse + _seg_bytes(spec, h, h * spec.nq)


def _dkv_bytes(spec: _Spec, dtype) -> int:
  b, h, g, l, s, k = spec.batch, spec.heads, spec.kv_heads, spec.q_len, spec.kv_len, spec.head_dim
  kv = 4 * _nbytes((b, g, s, k), dtype)                 # k, v in; dk, dv out
  q_side = 3 * spec.nk_dkv * _nbytes((b, h, l, k), dtype)   # whole q, o, do per key block
  lse = spec.nk_dkv * _nbytes((b, h, l, LANES), jnp.float32)
  # The bias column [L, bk] of one head stays put across the batch only when each head has
  # its own key/value head; otherwise it changes with every step.
  bias_fetches = 1 if spec.group == 1 else b
  bias = bias_fetches * _nbytes((h, l, s), jnp.float32) if spec.has_bias else 0
  return kv + q_side + lse + bias + _seg_bytes(spec, h * spec.nk_dkv, g * spec.nk_dkv)


# ----------------------------------------------------------------------------------------
# VMEM: each kernel keeps whole rows or columns of a head on chip.

# TPU v4's VMEM (the smallest of the TPUs flan_jax compiles for).
VMEM_BUDGET = 16 * 2 ** 20


def vmem_bytes(spec: _Spec, itemsize: int) -> dict[str, int]:
  """On-chip bytes of each kernel: its blocks, double-buffered, and its [bq, bk] float32
  intermediates."""
  l, s, k, bq, bk, bkd = spec.q_len, spec.kv_len, spec.head_dim, spec.block_q, spec.block_k, spec.block_k_dkv
  seg_q = lambda rows: rows * LANES * 4 if spec.has_segments else 0
  seg_k = lambda cols: SUBLANES * cols * 4 if spec.has_segments else 0
  bias = lambda rows, cols: rows * cols * 4 if spec.has_bias else 0
  work = lambda rows, cols: 3 * rows * cols * 4  # logits, probabilities and one gradient live at once
  fwd = 2 * (2 * bq * k * itemsize + 2 * s * k * itemsize + bias(bq, s) + bq * LANES * 4 + seg_q(bq) + seg_k(s))
  dq = 2 * (4 * bq * k * itemsize + 2 * s * k * itemsize + 2 * bias(bq, s) + bq * LANES * 4 + seg_q(bq) + seg_k(s))
  dkv = (2 * (3 * l * k * itemsize + 4 * bkd * k * itemsize + l * LANES * 4 + bias(l, bkd) + seg_q(l) + seg_k(bkd))
         + 2 * bkd * k * 4)
  return {"fwd": fwd + work(bq, bk), "dq": dq + work(bq, bk), "dkv": dkv + work(bq, bkd)}


def _fit_vmem(spec: _Spec, itemsize: int) -> _Spec:
  """Narrower blocks (down to 128) until every kernel fits VMEM_BUDGET; a clear error if
  even those do not (the sequence is too long for kernels that hold whole rows of a head)."""
  while True:
    need = vmem_bytes(spec, itemsize)
    if max(need.values()) <= VMEM_BUDGET:
      return spec
    if need["dkv"] > VMEM_BUDGET and spec.block_k_dkv > LANES and spec.kv_len % (spec.block_k_dkv // 2) == 0:
      spec = dataclasses.replace(spec, block_k_dkv=spec.block_k_dkv // 2)
    elif max(need["fwd"], need["dq"]) > VMEM_BUDGET and spec.block_q > LANES and spec.q_len % (spec.block_q // 2) == 0:
      spec = dataclasses.replace(spec, block_q=spec.block_q // 2)
    elif spec.block_k > LANES and spec.kv_len % (spec.block_k // 2) == 0:
      spec = dataclasses.replace(spec, block_k=spec.block_k // 2)
    else:
      worst = max(need, key=need.get)
      raise ValueError(
          f"flash attention: lengths {spec.q_len} x {spec.kv_len} with head dim {spec.head_dim} need "
          f"{need[worst] / 2 ** 20:.1f} MiB of VMEM in the {worst} kernel, over its {VMEM_BUDGET / 2 ** 20:.0f} "
          "MiB (the kernels hold whole rows of a head); use attention_kernel='xla' for these lengths")


# ----------------------------------------------------------------------------------------
# The calls.


def _params(*semantics: str):
  return pltpu.CompilerParams(dimension_semantics=semantics)


def _seg_specs(q_index, kv_index, q_block, kv_block):
  return [pl.BlockSpec((None, q_block, LANES), q_index), pl.BlockSpec((None, SUBLANES, kv_block), kv_index)]


def _seg_arrays(spec: _Spec, qseg, kseg):
  if not spec.has_segments:
    return []
  return [jnp.broadcast_to(qseg.astype(jnp.int32)[:, :, None], (spec.batch, spec.q_len, LANES)),
          jnp.broadcast_to(kseg.astype(jnp.int32)[:, None, :], (spec.batch, SUBLANES, spec.kv_len))]


def _forward(spec: _Spec, q, k, v, bias, qseg, kseg):
  bq, s, kd, grp = spec.block_q, spec.kv_len, spec.head_dim, spec.group
  in_specs = [pl.BlockSpec((None, None, bq, kd), lambda h, i, b: (b, h, i, 0)),
              pl.BlockSpec((None, None, s, kd), lambda h, i, b: (b, jax.lax.div(h, grp), 0, 0)),
              pl.BlockSpec((None, None, s, kd), lambda h, i, b: (b, jax.lax.div(h, grp), 0, 0))]
  args = [q, k, v]
  if spec.has_bias:
    in_specs.append(pl.BlockSpec((None, bq, s), lambda h, i, b: (h, i, 0)))
    args.append(bias)
  if spec.has_segments:
    in_specs += _seg_specs(lambda h, i, b: (b, i, 0), lambda h, i, b: (b, 0, 0), bq, s)
    args += _seg_arrays(spec, qseg, kseg)
  out_shape = [jax.ShapeDtypeStruct(q.shape, q.dtype),
               jax.ShapeDtypeStruct((spec.batch, spec.heads, spec.q_len, LANES), jnp.float32)]
  out_specs = [pl.BlockSpec((None, None, bq, kd), lambda h, i, b: (b, h, i, 0)),
               pl.BlockSpec((None, None, bq, LANES), lambda h, i, b: (b, h, i, 0))]
  o, lse = pl.pallas_call(
      functools.partial(_fwd_kernel, spec=spec), out_shape=out_shape,
      grid=(spec.heads, spec.nq, spec.batch), in_specs=in_specs, out_specs=out_specs,
      compiler_params=_params("parallel", "parallel", "arbitrary"),
      cost_estimate=_cost(spec, 2, 1, _fwd_bytes(spec, q.dtype)),
      interpret=spec.interpret, name="flash_attention_fwd")(*args)
  return o, lse


def _backward(spec: _Spec, q, k, v, bias, qseg, kseg, o, lse, do):
  bq, bk, l, s, kd, grp = spec.block_q, spec.block_k_dkv, spec.q_len, spec.kv_len, spec.head_dim, spec.group
  # dq and the bias gradient.
  row = lambda h, i, b: (b, h, i, 0)
  whole_kv = lambda h, i, b: (b, jax.lax.div(h, grp), 0, 0)
  in_specs = [pl.BlockSpec((None, None, bq, kd), row), pl.BlockSpec((None, None, s, kd), whole_kv),
              pl.BlockSpec((None, None, s, kd), whole_kv), pl.BlockSpec((None, None, bq, kd), row),
              pl.BlockSpec((None, None, bq, kd), row), pl.BlockSpec((None, None, bq, LANES), row)]
  args = [q, k, v, o, do, lse]
  if spec.has_bias:
    in_specs.append(pl.BlockSpec((None, bq, s), lambda h, i, b: (h, i, 0)))
    args.append(bias)
  segs = _seg_arrays(spec, qseg, kseg)
  if spec.has_segments:
    in_specs += _seg_specs(lambda h, i, b: (b, i, 0), lambda h, i, b: (b, 0, 0), bq, s)
    args += segs
  out_shape = [jax.ShapeDtypeStruct(q.shape, q.dtype)]
  out_specs = [pl.BlockSpec((None, None, bq, kd), row)]
  if spec.has_bias:
    out_shape.append(jax.ShapeDtypeStruct((spec.heads, l, s), jnp.float32))
    out_specs.append(pl.BlockSpec((None, bq, s), lambda h, i, b: (h, i, 0)))
  dq_out = pl.pallas_call(
      functools.partial(_dq_kernel, spec=spec), out_shape=out_shape,
      grid=(spec.heads, spec.nq, spec.batch), in_specs=in_specs, out_specs=out_specs,
      compiler_params=_params("parallel", "parallel", "arbitrary"),
      cost_estimate=_cost(spec, 3, 1, _dq_bytes(spec, q.dtype)),
      interpret=spec.interpret, name="flash_attention_dq")(*args)
  dq = dq_out[0]
  dbias = dq_out[1] if spec.has_bias else None

  # dk and dv.
  head = lambda g, j, b, r: (b, g * grp + r, 0, 0)
  kv_blk = lambda g, j, b, r: (b, g, j, 0)
  in_specs = [pl.BlockSpec((None, None, l, kd), head), pl.BlockSpec((None, None, bk, kd), kv_blk),
              pl.BlockSpec((None, None, bk, kd), kv_blk), pl.BlockSpec((None, None, l, kd), head),
              pl.BlockSpec((None, None, l, kd), head), pl.BlockSpec((None, None, l, LANES), head)]
  args = [q, k, v, o, do, lse]
  if spec.has_bias:
    in_specs.append(pl.BlockSpec((None, l, bk), lambda g, j, b, r: (g * grp + r, 0, j)))
    args.append(bias)
  if spec.has_segments:
    in_specs += _seg_specs(lambda g, j, b, r: (b, 0, 0), lambda g, j, b, r: (b, 0, j), l, bk)
    args += segs
  dk, dv = pl.pallas_call(
      functools.partial(_dkv_kernel, spec=spec),
      out_shape=[jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)],
      grid=(spec.kv_heads, spec.nk_dkv, spec.batch, grp), in_specs=in_specs,
      out_specs=[pl.BlockSpec((None, None, bk, kd), kv_blk), pl.BlockSpec((None, None, bk, kd), kv_blk)],
      scratch_shapes=[pltpu.VMEM((bk, kd), jnp.float32), pltpu.VMEM((bk, kd), jnp.float32)],
      compiler_params=_params("parallel", "parallel", "parallel", "arbitrary"),
      cost_estimate=_cost(spec, 4, 1, _dkv_bytes(spec, q.dtype)),
      interpret=spec.interpret, name="flash_attention_dkv")(*args)
  return dq, dk, dv, dbias


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _attention(spec: _Spec, q, k, v, bias, qseg, kseg):
  return _forward(spec, q, k, v, bias, qseg, kseg)[0]


def _attention_fwd(spec: _Spec, q, k, v, bias, qseg, kseg):
  o, lse = _forward(spec, q, k, v, bias, qseg, kseg)
  return o, (q, k, v, bias, qseg, kseg, o, lse)


def _attention_bwd(spec: _Spec, residuals, do):
  q, k, v, bias, qseg, kseg, o, lse = residuals
  dq, dk, dv, dbias = _backward(spec, q, k, v, bias, qseg, kseg, o, lse, do)
  zero_seg = lambda x: None if x is None else jnp.zeros(x.shape, jax.dtypes.float0)
  return dq, dk, dv, dbias, zero_seg(qseg), zero_seg(kseg)


_attention.defvjp(_attention_fwd, _attention_bwd)


def flash_attention(q_BxHxLxK: Array, k_BxGxSxK: Array, v_BxGxSxK: Array, bias_HxLxS: Array | None = None,
                    q_segment_ids_BxL: Array | None = None, kv_segment_ids_BxS: Array | None = None, *,
                    causal: bool = False, block_q: int = BLOCK_Q, block_k: int = BLOCK_K,
                    block_k_dkv: int = BLOCK_K_DKV, interpret: bool = False) -> Array:
  """softmax(q.k^T + bias, masked) . v per head, [B, H, L, K] (see the module docstring)."""
  b, h, l, kd = q_BxHxLxK.shape
  bk_, g, s, kd_k = k_BxGxSxK.shape
  if (bk_, kd_k) != (b, kd) or v_BxGxSxK.shape != k_BxGxSxK.shape or h % g:
    raise ValueError(f"flash_attention: q {q_BxHxLxK.shape} and k/v {k_BxGxSxK.shape}/{v_BxGxSxK.shape} "
                     "need the same batch and head dim, and key/value heads that divide the query heads")
  if bias_HxLxS is not None and bias_HxLxS.shape != (h, l, s):
    raise ValueError(f"flash_attention: bias {bias_HxLxS.shape}, expected [H, L, S] = {(h, l, s)}")
  if (q_segment_ids_BxL is None) != (kv_segment_ids_BxS is None):
    raise ValueError("flash_attention: give both query and key segment ids, or neither")
  if q_segment_ids_BxL is not None and (q_segment_ids_BxL.shape != (b, l) or kv_segment_ids_BxS.shape != (b, s)):
    raise ValueError(f"flash_attention: segment ids {q_segment_ids_BxL.shape} and {kv_segment_ids_BxS.shape}, "
                     f"expected {(b, l)} and {(b, s)}")
  spec = _Spec(batch=b, heads=h, kv_heads=g, q_len=l, kv_len=s, head_dim=kd,
               block_q=_block(l, block_q, interpret), block_k=_block(s, block_k, interpret),
               block_k_dkv=_block(s, block_k_dkv, interpret), causal=causal,
               has_bias=bias_HxLxS is not None, has_segments=q_segment_ids_BxL is not None,
               interpret=interpret)
  if not interpret:
    spec = _fit_vmem(spec, q_BxHxLxK.dtype.itemsize)
  return _attention(spec, q_BxHxLxK, k_BxGxSxK, v_BxGxSxK, bias_HxLxS, q_segment_ids_BxL, kv_segment_ids_BxS)


def reference_attention(q_BxHxLxK: Array, k_BxGxSxK: Array, v_BxGxSxK: Array, bias_HxLxS: Array | None = None,
                        q_segment_ids_BxL: Array | None = None, kv_segment_ids_BxS: Array | None = None, *,
                        causal: bool = False) -> Array:
  """The same attention with XLA ops and the additive mask (for tests and comparisons)."""
  g = k_BxGxSxK.shape[1]
  rep = q_BxHxLxK.shape[1] // g
  k = jnp.repeat(k_BxGxSxK, rep, axis=1)
  v = jnp.repeat(v_BxGxSxK, rep, axis=1)
  s = jnp.einsum("bhlk,bhsk->bhls", q_BxHxLxK, k, preferred_element_type=jnp.float32)
  if bias_HxLxS is not None:
    s = s + bias_HxLxS[None].astype(jnp.float32)
  l, n = s.shape[2], s.shape[3]
  allowed = jnp.ones((1, 1, l, n), bool)
  if causal:
    allowed = allowed & jnp.tril(jnp.ones((l, n), bool))[None, None]
  if q_segment_ids_BxL is not None:
    qs, ks = q_segment_ids_BxL[:, None, :, None], kv_segment_ids_BxS[:, None, None, :]
    allowed = allowed & (qs == ks) & (qs > 0) & (ks > 0)
  s = s + jnp.where(allowed, 0.0, MASK_VALUE)
  p = jax.nn.softmax(s, axis=-1)
  return jnp.einsum("bhls,bhsk->bhlk", p.astype(v.dtype), v, preferred_element_type=jnp.float32).astype(q_BxHxLxK.dtype)
