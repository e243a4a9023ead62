"""Autoregressive decoding with a KV cache, and log-likelihood scoring.

    decoder = SequenceDecoder(model, mesh)                 # T5 Transformer or PaLM decoder
    params = decoder.put_params(params)             # onto the partitioner's shardings
    out = decoder.greedy(params, inputs_BxS, max_decode_len=64)
    out = decoder.beam_search(params, inputs_BxS, num_beams=4, alpha=0.6, max_decode_len=64)
    out = decoder.sample(params, inputs_BxS, seed=0, temperature=0.7, top_k=40, top_p=0.95)
    out.tokens                                      # [B, N] int32: generated ids, EOS kept, PAD (0) after
    lls = decoder.score_options(params, inputs, options)   # multiple choice by log-likelihood

Every search runs inside one `jax.jit` as a `lax.while_loop` over at most `max_decode_len`
steps with the KV cache in the carry, so a new token costs one single-token decoder step.
The loop stops early once every row has produced EOS (id 1) or, for beam search, once no
live beam can still beat the finished ones.

How the models are driven (one code path for both families):
  * the *decoder prefix* is what is fed before the first generated token: the start token 0
    for the encoder-decoder (T5), `[0] + prompt` for a decoder-only model (PaLM), whose
    training inputs are the concatenation shifted right by one (seqio's PrefixLM/Decoder
    converters). Prefixes of different lengths are right-padded; while a row is still in
    its prefix the loop forces the prefix token instead of choosing one. (The prompt thus
    goes through the cache token by token: simple and exact, but a long prompt costs one
    step per token.)
  * `step_fn(context, tokens_Bx1, index, cache) -> (logits_BxV, cache)` is one cached
    decoder step at position `index`; `context` holds per-row arrays computed once (the T5
    encoder output). The cache is created by shape (`model.init` under `jax.eval_shape`,
    nothing computed) and zero-filled; the first step runs before the loop, so cache
    entries that a model creates on its first step (cross-attention keys/values computed
    from the encoder output) enter the carry with their final structure.

Search choices, one per line (T5X's `decoding.beam_search` / `models.py` unless said):
  * default decode (`DecodeConfig.search='auto'`): encoder-decoder models run beam search with
    `num_beams` (1) beams and alpha 0.6, as T5X's EncoderDecoderModel; decoder-only models
    decode greedily (temperature 0) or sample; `search='greedy'` asks for greedy everywhere.
  * each step ranks the 2K best one-token extensions of the K live beams.
  * any EOS among those 2K candidates finishes a hypothesis; the K best non-EOS stay live.
  * finished hypotheses score log-prob / ((5 + length) / 6) ** alpha, and the K best are kept.
  * length counts the generated tokens (EOS included) plus, for decoder-only models, the
    prompt (T5X's `initial_index`).
  * hypotheses that reach `max_decode_len` without EOS never join the finished ones; they
    are returned only for a row where nothing finished.
  * a row stops once its best live log-prob over the brevity penalty at its longest
    possible length cannot beat its worst finished score (T5X stops when all rows can't;
    the results are the same).
  * the prompt is fed through the cache token by token with zero cost to the score (ours;
    T5X prefills it).

Shape letters: B batch, K beams, S input length, P decoder-prefix length, N max_decode_len,
T = P + N sequence (and cache) length, V vocabulary.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from flan_jax import models
from flan_jax.core import partitioning

PyTree = Any
Array = jax.Array
StepFn = Callable[[PyTree, Array, Array, PyTree], tuple[Array, PyTree]]

PAD_ID = 0
EOS_ID = 1
# Finite "minus infinity" for log-probabilities, T5X's (t5x/decoding.py NEG_INF = -1.0e7):
# sums of a few stay finite and ordered. (Attention masks use `layers.MASK_BIAS`.)
NEG_INF = -1.0e7


@gin.configurable
@dataclasses.dataclass(frozen=True)
class DecodeConfig:
  """How to decode. `num_beams > 1`: beam search; else `temperature == 0`: greedy,
  `temperature > 0`: sampling (after top-k, then top-p filtering; 0 / 1.0 disable them).
  `min_decode_len` forbids EOS before that many tokens (as transformers' `min_new_tokens`)."""
  max_decode_len: int = 64
  num_beams: int = 1
  alpha: float = 0.6
  temperature: float = 0.0
  top_k: int = 0
  top_p: float = 1.0
  min_decode_len: int = 0
  eos_id: int = EOS_ID
  search: str = "auto"  # 'auto' (T5X's default per family) | 'greedy' | 'beam' | 'sample'

  def __post_init__(self):
    if self.search not in ("auto", "greedy", "beam", "sample"):
      raise ValueError(f"DecodeConfig.search={self.search!r}; use auto, greedy, beam or sample")
    if self.search == "greedy" and (self.num_beams > 1 or self.temperature > 0):
      raise ValueError("DecodeConfig.search='greedy' needs num_beams=1 and temperature=0")
    if self.search == "sample" and self.temperature <= 0:
      raise ValueError("DecodeConfig.search='sample' needs temperature > 0")
    if self.max_decode_len < 1:
      raise ValueError(f"DecodeConfig.max_decode_len={self.max_decode_len}; must be >= 1")
    if self.num_beams < 1:
      raise ValueError(f"DecodeConfig.num_beams={self.num_beams}; must be >= 1 (1 = greedy or sampling)")
    if self.num_beams > 1 and self.temperature > 0:
      raise ValueError("DecodeConfig: beam search (num_beams > 1) is deterministic; set temperature=0 "
                       "or num_beams=1 to sample")
    if self.temperature < 0 or self.top_k < 0 or not 0.0 < self.top_p <= 1.0:
      raise ValueError(f"DecodeConfig: need temperature >= 0, top_k >= 0 and 0 < top_p <= 1; got "
                       f"{self.temperature}, {self.top_k}, {self.top_p}")
    if not 0 <= self.min_decode_len <= self.max_decode_len:
      raise ValueError(f"DecodeConfig.min_decode_len={self.min_decode_len}; must be in [0, max_decode_len]")

  @property
  def method(self) -> str:
    """'beam', 'sample', 'greedy', or 't5x_default' (settled by the model: `method_for`)."""
    if self.num_beams > 1 or self.search == "beam":
      return "beam"
    if self.temperature > 0:
      return "sample"
    return "greedy" if self.search == "greedy" else "t5x_default"

  def method_for(self, encoder_decoder: bool) -> str:
    """The search run for a model: T5X's EncoderDecoderModel defaults to beam search (one
    beam, alpha 0.6); its DecoderOnlyModel to temperature sampling (greedy at temperature 0)."""
    m = self.method
    if m == "t5x_default":
      return "beam" if encoder_decoder else "greedy"
    return m


class Decoded(NamedTuple):
  """Host results. `tokens` [B, N]: generated ids (EOS included, PAD after); `scores` [B]:
  sum of the model's log-probs of those tokens (beam search: the length-normalised
  score). Beam search also gives every beam, best first: `beams` [B, K, N], `beam_scores` [B, K]."""
  tokens: np.ndarray
  scores: np.ndarray
  beams: np.ndarray | None = None
  beam_scores: np.ndarray | None = None


# ----------------------------------------------------------------------------------------
# Model-agnostic searches over a cached step function.


def brevity_penalty(alpha: float, length: Array) -> Array:
  """T5X's length normalisation: ((5 + length) / 6) ** alpha."""
  return jnp.power((5.0 + length.astype(jnp.float32)) / 6.0, alpha)


def filter_logits(logits_BxV: Array, top_k: int = 0, top_p: float = 1.0) -> Array:
  """Sets logits outside the top-k, then outside the top-p nucleus, to NEG_INF.

  The nucleus is the smallest set of most likely tokens whose probability reaches `top_p`
  (always at least the most likely token); ties at a threshold are kept.
  """
  if top_k and top_k < logits_BxV.shape[-1]:  # a k at or above the vocabulary keeps every token
    kth_Bx1 = jax.lax.top_k(logits_BxV, top_k)[0][:, -1:]
    logits_BxV = jnp.where(logits_BxV < kth_Bx1, NEG_INF, logits_BxV)
  if top_p < 1.0:
    sorted_BxV = jnp.sort(logits_BxV, axis=-1)[:, ::-1]
    probs_BxV = jax.nn.softmax(sorted_BxV, axis=-1)
    mass_before_BxV = jnp.cumsum(probs_BxV, axis=-1) - probs_BxV
    kept_BxV = mass_before_BxV < top_p
    threshold_Bx1 = jnp.min(jnp.where(kept_BxV, sorted_BxV, jnp.inf), axis=-1, keepdims=True)
    logits_BxV = jnp.where(logits_BxV < threshold_Bx1, NEG_INF, logits_BxV)
  return logits_BxV


def _column(x_BxL: Array, index: Array) -> Array:
  """x[:, index] with a traced index clipped into range."""
  index = jnp.clip(index, 0, x_BxL.shape[1] - 1)
  return jax.lax.dynamic_index_in_dim(x_BxL, index, axis=1, keepdims=False)


def _forced_tokens(prefix_BxP: Array, prefix_len_B: Array, pos: Array, max_decode_len: int):
  """Which rows do not choose the token at `pos`, and what they get instead: the prefix
  token while inside the prefix, PAD once `max_decode_len` tokens were generated."""
  gen_index_B = pos - prefix_len_B  # tokens generated before this one; < 0 inside the prefix
  in_prefix_B = gen_index_B < 0
  past_end_B = gen_index_B >= max_decode_len
  token_B = jnp.where(in_prefix_B, _column(prefix_BxP, pos), PAD_ID)
  return in_prefix_B | past_end_B, token_B, gen_index_B


def _generated(seq_BxT: Array, prefix_len_B: Array, max_decode_len: int) -> Array:
  """The `max_decode_len` positions after each row's prefix."""
  idx_BxN = prefix_len_B[:, None] + jnp.arange(max_decode_len)[None, :]
  return jnp.take_along_axis(seq_BxT, idx_BxN, axis=1)


def temperature_sample(step_fn: StepFn, context: PyTree, cache: PyTree, prefix_BxP: Array, prefix_len_B: Array,
                       rng: Array | None = None, *, max_decode_len: int, temperature: float = 0.0,
                       top_k: int = 0, top_p: float = 1.0, min_decode_len: int = 0,
                       eos_id: int = EOS_ID) -> tuple[Array, Array]:
  """Greedy (`temperature == 0`) or sampled decoding. Returns (tokens [B, N], log-prob sums [B]).

  `cache` must have room for P + N positions; `rng` is needed only when sampling.
  """
  b, p = prefix_BxP.shape
  n = max_decode_len

  def choose(s, logits_BxV, pos):
    """Picks the token at `pos` from the logits of the step that fed `pos - 1`."""
    forced_B, forced_token_B, gen_index_B = _forced_tokens(prefix_BxP, prefix_len_B, pos, n)
    logits_BxV = logits_BxV.astype(jnp.float32)
    if min_decode_len:  # elementwise (not a scatter), so that it fuses into the reductions below
      too_early_BxV = (gen_index_B < min_decode_len)[:, None] & (jnp.arange(logits_BxV.shape[-1]) == eos_id)
      logits_BxV = jnp.where(too_early_BxV, NEG_INF, logits_BxV)
    if temperature == 0.0:
      token_B = jnp.argmax(logits_BxV, axis=-1).astype(jnp.int32)
    else:
      filtered_BxV = filter_logits(logits_BxV / temperature, top_k, top_p)
      token_B = jax.random.categorical(jax.random.fold_in(rng, pos), filtered_BxV).astype(jnp.int32)
    token_B = jnp.where(forced_B, forced_token_B, token_B)
    token_B = jnp.where(s["done"], PAD_ID, token_B)
    chosen_B = ~forced_B & ~s["done"]
    # log_softmax(logits)[token] without materialising [B, V] log-probs (one pass fewer).
    token_logp_B = (jnp.take_along_axis(logits_BxV, token_B[:, None], axis=-1)[:, 0]
                    - jax.nn.logsumexp(logits_BxV, axis=-1))
    return dict(
        i=pos, cache=s["cache"],
        seq=jax.lax.dynamic_update_slice_in_dim(s["seq"], token_B[:, None], pos, axis=1),
        done=s["done"] | (chosen_B & ((token_B == eos_id) | (gen_index_B + 1 >= n))),
        logprob=s["logprob"] + jnp.where(chosen_B, token_logp_B, 0.0))

  def body(s):  # feeds the token at i, chooses the one at i + 1
    logits_BxV, cache = step_fn(context, _column(s["seq"], s["i"])[:, None], s["i"], s["cache"])
    return choose({**s, "cache": cache}, logits_BxV, s["i"] + 1)

  def cond(s):
    return (s["i"] < p + n - 1) & ~jnp.all(s["done"])

  # The first step runs outside the loop: the cache it returns has its final structure.
  init = dict(i=jnp.array(0, jnp.int32), cache=cache, done=jnp.zeros((b,), bool),
              seq=jnp.zeros((b, p + n), jnp.int32).at[:, :p].set(prefix_BxP),
              logprob=jnp.zeros((b,), jnp.float32))
  final = jax.lax.while_loop(cond, body, body(init))
  return _generated(final["seq"], prefix_len_B, n), final["logprob"]


def _repeat_rows(tree: PyTree, axes: PyTree, k: int) -> PyTree:
  """Repeats every row k times along its batch axis (row b -> rows b*k .. b*k+k-1)."""
  return jax.tree.map(lambda x, ax: x if ax is None else jnp.repeat(x, k, axis=ax), tree, axes)


def _take_rows(tree: PyTree, axes: PyTree, rows: Array) -> PyTree:
  return jax.tree.map(lambda x, ax: x if ax is None else jnp.take(x, rows, axis=ax), tree, axes)


def beam_search(step_fn: StepFn, context: PyTree, cache: PyTree, cache_batch_axes: PyTree, prefix_BxP: Array,
                prefix_len_B: Array, *, num_beams: int, max_decode_len: int, alpha: float = 0.6,
                min_decode_len: int = 0, eos_id: int = EOS_ID) -> tuple[Array, Array]:
  """Beam search (see the module docstring). Returns (beams [B, K, N], scores [B, K]), best first.

  `context` (batch on axis 0) and `cache` hold B rows. The first step runs on them; its
  cache (batch on `cache_batch_axes`, which describe the cache as that step returns it)
  is then repeated to B*K rows. Scores are log-prob sums divided by the brevity penalty.
  """
  b, p = prefix_BxP.shape
  k, n = num_beams, max_decode_len
  t = p + n
  prompt_len_B = (prefix_len_B - 1).astype(jnp.float32)  # the prefix minus the start token

  def choose(s, logits_BKxV, pos):
    """Extends the live beams by the token at `pos`, updates the finished hypotheses and
    reorders the cache rows to follow their beams."""
    forced_B, forced_token_B, gen_index_B = _forced_tokens(prefix_BxP, prefix_len_B, pos, n)
    logp_BxKxV = jax.nn.log_softmax(logits_BKxV.astype(jnp.float32)).reshape(b, k, -1)
    v = logp_BxKxV.shape[-1]
    if min_decode_len:
      too_early_BxKxV = (gen_index_B < min_decode_len)[:, None, None] & (jnp.arange(v) == eos_id)
      logp_BxKxV = jnp.where(too_early_BxKxV, NEG_INF, logp_BxKxV)
    forced_logp_BxV = jnp.where(jnp.arange(v)[None, :] == forced_token_B[:, None], 0.0, NEG_INF)
    logp_BxKxV = jnp.where(forced_B[:, None, None], forced_logp_BxV[:, None, :], logp_BxKxV)

    # The 2K best one-token extensions of the live beams.
    cand_BxKV = (s["alive_logp"][:, :, None] + logp_BxKxV).reshape(b, k * v)
    top_logp_Bx2K, top_idx_Bx2K = jax.lax.top_k(cand_BxKV, 2 * k)
    src_beam_Bx2K, token_Bx2K = top_idx_Bx2K // v, (top_idx_Bx2K % v).astype(jnp.int32)
    top_seq_Bx2KxT = jnp.take_along_axis(s["alive_seq"], src_beam_Bx2K[:, :, None], axis=1)
    top_seq_Bx2KxT = jax.lax.dynamic_update_slice_in_dim(top_seq_Bx2KxT, token_Bx2K[:, :, None], pos, axis=2)
    ends_Bx2K = ~forced_B[:, None] & (token_Bx2K == eos_id)  # any EOS among the 2K

    # Live beams: the K best extensions that did not end.
    alive_logp_BxK, keep_BxK = jax.lax.top_k(top_logp_Bx2K + ends_Bx2K * NEG_INF, k)
    alive_seq = jnp.take_along_axis(top_seq_Bx2KxT, keep_BxK[:, :, None], axis=1)
    alive_src_BxK = jnp.take_along_axis(src_beam_Bx2K, keep_BxK, axis=1)

    # Finished hypotheses: merge this step's EOS candidates into the kept K.
    finishes_Bx2K = ends_Bx2K & s["open"][:, None]
    new_score_Bx2K = top_logp_Bx2K / brevity_penalty(alpha, prompt_len_B + gen_index_B + 1)[:, None]
    new_score_Bx2K = jnp.where(finishes_Bx2K, new_score_Bx2K, NEG_INF)
    merged_score = jnp.concatenate([s["fin_score"], new_score_Bx2K], axis=1)
    merged_seq = jnp.concatenate([s["fin_seq"], top_seq_Bx2KxT], axis=1)
    merged_flag = jnp.concatenate([s["fin_flag"], finishes_Bx2K], axis=1)
    fin_score, fin_idx = jax.lax.top_k(merged_score, k)
    fin_seq = jnp.take_along_axis(merged_seq, fin_idx[:, :, None], axis=1)
    fin_flag = jnp.take_along_axis(merged_flag, fin_idx, axis=1)

    # A row stays open while a live beam could still beat its worst finished hypothesis.
    best_possible_B = alive_logp_BxK[:, 0] / brevity_penalty(alpha, prompt_len_B + n)
    worst_finished_B = jnp.where(jnp.all(fin_flag, axis=1), jnp.min(fin_score, axis=1), NEG_INF)
    open_B = s["open"] & (gen_index_B + 1 < n) & (best_possible_B > worst_finished_B)

    rows = (jnp.arange(b)[:, None] * k + alive_src_BxK).reshape(b * k)
    return dict(i=pos, cache=_take_rows(s["cache"], cache_batch_axes, rows), alive_seq=alive_seq,
                alive_logp=alive_logp_BxK, fin_seq=fin_seq, fin_score=fin_score, fin_flag=fin_flag, open=open_B)

  def body(s):  # feeds the live beams' tokens at i, extends them at i + 1
    tokens_BKx1 = _column(s["alive_seq"].reshape(b * k, t), s["i"])[:, None]
    logits_BKxV, cache = step_fn(context, tokens_BKx1, s["i"], s["cache"])
    return choose({**s, "cache": cache}, logits_BKxV, s["i"] + 1)

  def cond(s):
    return (s["i"] < t - 1) & jnp.any(s["open"])

  # The first step runs on B rows (all beams of a row start alike) outside the loop: the
  # cache it returns has its final structure. Then everything is repeated to B*K rows.
  logits_BxV, cache = step_fn(context, prefix_BxP[:, :1], jnp.array(0, jnp.int32), cache)
  context = _repeat_rows(context, jax.tree.map(lambda _: 0, context), k)
  seq_BxKxT = jnp.broadcast_to(jnp.zeros((b, 1, t), jnp.int32).at[:, 0, :p].set(prefix_BxP), (b, k, t))
  init = dict(
      i=jnp.array(0, jnp.int32), cache=_repeat_rows(cache, cache_batch_axes, k),
      alive_seq=seq_BxKxT, alive_logp=jnp.tile(jnp.array([0.0] + [NEG_INF] * (k - 1), jnp.float32), (b, 1)),
      fin_seq=seq_BxKxT, fin_score=jnp.full((b, k), NEG_INF, jnp.float32), fin_flag=jnp.zeros((b, k), bool),
      open=jnp.ones((b,), bool))
  final = jax.lax.while_loop(cond, body, choose(init, jnp.repeat(logits_BxV, k, axis=0), jnp.array(1, jnp.int32)))
  none_finished_B = ~jnp.any(final["fin_flag"], axis=1)
  seq_BxKxT = jnp.where(none_finished_B[:, None, None], final["alive_seq"], final["fin_seq"])
  scores_BxK = jnp.where(none_finished_B[:, None], final["alive_logp"], final["fin_score"])
  beams = _generated(seq_BxKxT.reshape(b * k, t), jnp.repeat(prefix_len_B, k), n).reshape(b, k, n)
  return beams, scores_BxK


# ----------------------------------------------------------------------------------------
# Helpers. How each model family is driven lives with the family
# (`flan_jax.models.<family>.*Hooks`, returned by `family.decode_hooks(module)`).


def _zeros_like_shapes(shapes: PyTree) -> PyTree:
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def _cache_batch_axes(boxed_cache: PyTree) -> PyTree:
  """Per cache leaf: the position of its `cache_batch` logical axis, or None (step counters)."""
  def axis(x):
    names = x.names if isinstance(x, nn.LogicallyPartitioned) else ()
    return names.index("cache_batch") if "cache_batch" in names else None
  return jax.tree.map(axis, boxed_cache, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))


def _pad_rows(rows: Sequence[Sequence[int]] | np.ndarray, length: int | None = None) -> np.ndarray:
  if isinstance(rows, np.ndarray) and rows.ndim == 2 and length is None:
    return rows.astype(np.int32)
  rows = [list(map(int, r)) for r in rows]
  width = max([len(r) for r in rows] + [1]) if length is None else length
  out = np.zeros((len(rows), width), np.int32)
  for i, r in enumerate(rows):
    if len(r) > width:
      raise ValueError(f"row {i} has {len(r)} tokens, more than the length {width}")
    out[i, :len(r)] = r
  return out



def detokenize(vocabulary, ids: Sequence[int], eos_id: int = EOS_ID) -> str:
  """Text of the ids up to (not including) the first EOS; padding dropped."""
  ids = [int(t) for t in ids]
  if eos_id in ids:
    ids = ids[:ids.index(eos_id)]
  return vocabulary.decode([t for t in ids if t > 0])

# ----------------------------------------------------------------------------------------
# The sharded, compiled front end.


class SequenceDecoder:
  """Greedy / beam / sampled decoding and scoring for one model on one mesh.

  Parameters live on `params_shardings` (default: the partitioner's, from the model's
  logical axis names); batches are split over the mesh's data axes (`batch_sharding`) and
  padded with empty rows to a multiple of their size. Each distinct (method, settings,
  shapes) compiles once. `inputs` are encoder tokens for T5 and prompts for a decoder-only
  model: [B, S] int arrays right-padded with 0, or lists of id lists.
  """

  def __init__(self, model: nn.Module, mesh: Mesh | None = None, params_shardings: PyTree | None = None):
    self.model = model
    family = models.family_for(model)
    self._family = family.decode_hooks(model)
    self.mesh = partitioning.make_mesh() if mesh is None else mesh
    abstract = family.abstract_params(model.config)
    self._abstract_params = nn.unbox(abstract)
    if params_shardings is None:
      params_shardings = partitioning.shardings_for(abstract, self.mesh)
    self.params_shardings = params_shardings
    self._compiled: dict[Any, Callable] = {}

  # -- parameters and batches ----------------------------------------------------------------

  def abstract_params(self) -> PyTree:
    """The parameters' shapes, dtypes and shardings: a restore target for
    `checkpoints.load_params`, which then places them directly."""
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        self._abstract_params, self.params_shardings)

  def put_params(self, params: PyTree) -> PyTree:
    """Unboxes `params` and places them on `params_shardings`."""
    params = nn.unbox(params)
    if isinstance(params, dict) and set(params) == {"params"}:
      params = params["params"]
    return jax.device_put(params, self.params_shardings)

  def _rows_multiple(self) -> int:
    return partitioning.data_parallel_size(self.mesh)

  def _put_batch(self, x: np.ndarray) -> tuple[Array, int]:
    """Pads rows to a multiple of the data-parallel size and shards them; returns (array, rows)."""
    b = x.shape[0]
    m = self._rows_multiple()
    padded = np.zeros((-(-b // m) * m,) + x.shape[1:], x.dtype)
    padded[:b] = x
    sharding = partitioning.batch_sharding(self.mesh, padded.ndim)
    return jax.make_array_from_callback(padded.shape, sharding, lambda idx: padded[idx]), b

  def _constrain_cache(self, cache: PyTree, boxed: PyTree) -> PyTree:
    """Lays each cache leaf out by its logical axis names (`boxed`: the same tree with
    `nn.LogicallyPartitioned` leaves); a mesh axis that does not divide a dimension is dropped."""
    mesh_sizes = dict(self.mesh.shape)

    def spec(x):
      if not isinstance(x, nn.LogicallyPartitioned):
        return None
      parts = []
      for dim, ax in zip(x.value.shape, partitioning.logical_to_mesh_spec(x.names)):
        size = 1 if ax is None else int(np.prod([mesh_sizes[a] for a in ((ax,) if isinstance(ax, str) else ax)]))
        parts.append(ax if size > 1 and dim % size == 0 else None)
      return P(*parts)

    specs = jax.tree.map(spec, boxed, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
    return jax.tree.map(lambda sp, x: x if sp is None else jax.lax.with_sharding_constraint(
        x, NamedSharding(self.mesh, sp)), specs, cache, is_leaf=lambda sp: sp is None or isinstance(sp, P))

  # -- decoding -------------------------------------------------------------------------------

  def _first_step_cache(self, params: PyTree, batch: int, input_len: int, length: int) -> PyTree:
    """The cache (abstract, boxed) as the first step returns it: it may add entries, e.g. the
    cross-attention keys/values of an encoder-decoder."""
    fam = self._family

    def first(params):
      inputs = jnp.ones((batch, input_len), jnp.int32)
      cache = _zeros_like_shapes(fam.cache_shapes(batch, input_len, length))  # boxed: names kept
      token = fam.prefix(inputs)[0][:, :1]
      return fam.step(params, fam.context(params, inputs), token, jnp.array(0, jnp.int32), cache)[1]
    return jax.eval_shape(first, params)

  def _decode_fn(self, config: DecodeConfig) -> Callable:
    key = ("decode", config)
    if key in self._compiled:
      return self._compiled[key]
    fam = self._family
    if fam.generation_error:
      raise ValueError(fam.generation_error)
    n, k = config.max_decode_len, config.num_beams

    def fn(params, inputs_BxS, rng):
      b, s = inputs_BxS.shape
      context = fam.context(params, inputs_BxS)
      prefix_BxP, prefix_len_B = fam.prefix(inputs_BxS)
      t = prefix_BxP.shape[1] + n
      boxed = fam.cache_shapes(b, s, t)  # abstract, with the cache's logical axis names
      cache = self._constrain_cache(nn.unbox(_zeros_like_shapes(boxed)), boxed)

      def step(context, tokens_Bx1, index, cache):  # the loops carry plain arrays
        logits_BxV, new_cache = fam.step(params, context, tokens_Bx1, index, cache)
        return logits_BxV, nn.unbox(new_cache)
      if config.method_for(fam.encoder_decoder) == "beam":
        step_axes = _cache_batch_axes(self._first_step_cache(params, b, s, t))
        beams, scores = beam_search(step, context, cache, step_axes, prefix_BxP, prefix_len_B, num_beams=k,
                                    max_decode_len=n, alpha=config.alpha, min_decode_len=config.min_decode_len,
                                    eos_id=config.eos_id)
        return beams[:, 0], scores[:, 0], beams, scores
      tokens, logprobs = temperature_sample(
          step, context, cache, prefix_BxP, prefix_len_B, rng, max_decode_len=n,
          temperature=config.temperature, top_k=config.top_k, top_p=config.top_p,
          min_decode_len=config.min_decode_len, eos_id=config.eos_id)
      return tokens, logprobs, None, None

    rep = partitioning.replicated(self.mesh)
    jitted = jax.jit(fn, in_shardings=(self.params_shardings, partitioning.batch_sharding(self.mesh, 2), rep),
                     out_shardings=rep)
    self._compiled[key] = jitted
    return jitted

  def decode(self, params: PyTree, inputs, config: DecodeConfig = DecodeConfig(),
             rng: Array | int | None = None) -> Decoded:
    """Decodes a batch as `config` says; `params` as returned by `put_params`."""
    inputs_BxS, b = self._put_batch(_pad_rows(inputs))
    if rng is None or isinstance(rng, int):
      rng = jax.random.key(rng or 0)
    with jax.set_mesh(self.mesh), partitioning.axis_rules():
      tokens, scores, beams, beam_scores = self._decode_fn(config)(params, inputs_BxS, rng)
    host = lambda x: None if x is None else np.asarray(x)[:b]
    return Decoded(host(tokens), host(scores), host(beams), host(beam_scores))

  def greedy(self, params: PyTree, inputs, max_decode_len: int = 64, **kw) -> Decoded:
    return self.decode(params, inputs, DecodeConfig(max_decode_len=max_decode_len, search="greedy", **kw))

  def sample(self, params: PyTree, inputs, seed: Array | int = 0, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, max_decode_len: int = 64, **kw) -> Decoded:
    config = DecodeConfig(max_decode_len=max_decode_len, temperature=temperature, top_k=top_k, top_p=top_p, **kw)
    return self.decode(params, inputs, config, rng=seed)

  def beam_search(self, params: PyTree, inputs, num_beams: int = 4, alpha: float = 0.6,
                  max_decode_len: int = 64, **kw) -> Decoded:
    return self.decode(params, inputs, DecodeConfig(max_decode_len=max_decode_len, num_beams=num_beams,
                                                    alpha=alpha, **kw))

  # -- scoring --------------------------------------------------------------------------------

  def _score_fn(self) -> Callable:
    if "score" not in self._compiled:
      fam = self._family

      def fn(params, inputs_BxS, targets_BxL):
        logp_BxL = fam.target_logprobs(params, inputs_BxS, targets_BxL)
        return jnp.sum(jnp.where(targets_BxL > 0, logp_BxL, 0.0), axis=1)

      batch = partitioning.batch_sharding(self.mesh, 2)
      self._compiled["score"] = jax.jit(fn, in_shardings=(self.params_shardings, batch, batch),
                                        out_shardings=partitioning.replicated(self.mesh))
    return self._compiled["score"]

  def score(self, params: PyTree, inputs, targets) -> np.ndarray:
    """log p(targets | inputs) [B]: the sum over each row's non-pad target tokens (include
    EOS in `targets` to score a complete answer, as seqio's tasks do)."""
    inputs_np, targets_np = _pad_rows(inputs), _pad_rows(targets)
    if len(inputs_np) != len(targets_np):
      raise ValueError(f"score: {len(inputs_np)} inputs but {len(targets_np)} targets")
    inputs_BxS, b = self._put_batch(inputs_np)
    targets_BxL, _ = self._put_batch(targets_np)
    with jax.set_mesh(self.mesh), partitioning.axis_rules():
      return np.asarray(self._score_fn()(params, inputs_BxS, targets_BxL))[:b]

  def score_options(self, params: PyTree, inputs: Sequence[Sequence[int]],
                    options: Sequence[Sequence[Sequence[int]]], batch_size: int = 32) -> list[np.ndarray]:
    """Multiple choice by log-likelihood: for each input, log p(option | input) of each of its
    options (token ids, EOS included if the task's targets have it). The pairs are scored in
    batches of `batch_size` with fixed shapes, so all batches share one compilation."""
    if len(inputs) != len(options):
      raise ValueError(f"score_options: {len(inputs)} inputs but {len(options)} option lists")
    pairs = [(i, list(x), list(o)) for i, (x, opts) in enumerate(zip(inputs, options)) for o in opts]
    if not pairs:
      return [np.zeros((0,), np.float32) for _ in inputs]
    in_len = max(len(x) for _, x, _ in pairs) or 1
    out_len = max(len(o) for _, _, o in pairs) or 1
    scores = []
    for start in range(0, len(pairs), batch_size):
      chunk = pairs[start:start + batch_size]
      chunk = chunk + [(-1, [], [])] * (batch_size - len(chunk))  # fixed shapes
      got = self.score(params, _pad_rows([x for _, x, _ in chunk], in_len),
                       _pad_rows([o for _, _, o in chunk], out_len))
      scores.extend(got[:len(pairs) - start])
    out, pos = [], 0
    for opts in options:
      out.append(np.asarray(scores[pos:pos + len(opts)], np.float32))
      pos += len(opts)
    return out
