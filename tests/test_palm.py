"""PaLM decoder: published sizes, and invariants (cache = recompute, scan = unrolled,
remat changes memory not numbers, prefix-LM and packing masks)."""
import pathlib

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from flan_jax.models import palm

GIN_DIR = pathlib.Path(__file__).resolve().parents[1] / "gin"
TINY = palm.PaLMConfig(vocab_size=64, emb_dim=32, num_heads=4, num_kv_heads=1, head_dim=8, num_layers=2,
                       mlp_dim=64)


def _config_from_gin(name: str) -> palm.PaLMConfig:
  gin.clear_config()
  try:
    gin.add_config_file_search_path(str(GIN_DIR))
    gin.parse_config_file(str(GIN_DIR / "models" / "palm" / name))
    return gin.query_parameter("%MODEL_CONFIG").scoped_configurable_fn()
  finally:
    gin.clear_config()


@pytest.mark.parametrize("name,published", [("8b.gin", 8.63e9), ("62b.gin", 62.50e9), ("540b.gin", 540.35e9)])
def test_param_counts_match_paper(name, published):
  n = palm.param_count(_config_from_gin(name))
  assert abs(n - published) / published < 0.01, f"{name}: {n / 1e9:.2f}B vs published {published / 1e9:.2f}B"


def test_tiny_gin_parses():
  cfg = _config_from_gin("tiny.gin")
  assert isinstance(cfg, palm.PaLMConfig)
  assert (cfg.num_layers, cfg.emb_dim, cfg.head_dim, cfg.vocab_size) == (2, 128, 32, 2048)


def _tokens(seed, shape, vocab=TINY.vocab_size):
  return jax.random.randint(jax.random.key(seed), shape, 1, vocab, dtype=jnp.int32)


def _init(cfg, tokens):
  return nn.unbox(palm.DecoderOnlyLM(cfg).init(jax.random.key(0), tokens)["params"])


def _restack(params_unrolled, num_layers):
  """layers_0..layers_{n-1} -> one tree under `layers` with a leading layer axis."""
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[params_unrolled[f"layers_{i}"] for i in range(num_layers)])
  out = {k: v for k, v in params_unrolled.items() if not k.startswith("layers_")}
  out["layers"] = stacked
  return out


@pytest.mark.slow
def test_forward_shapes_and_dtype():
  tokens = _tokens(0, (2, 7))
  for dtype in ("float32", "bfloat16"):
    cfg = palm.PaLMConfig(**{**TINY.__dict__, "dtype": dtype})
    params = _init(cfg, tokens)
    logits = jax.jit(palm.DecoderOnlyLM(cfg).apply)({"params": params}, tokens)
    assert logits.shape == (2, 7, TINY.vocab_size) and logits.dtype == jnp.float32
  assert params["layers_0"]["attention"]["key"]["kernel"].shape == (32, 1, 8)  # one shared KV head


def test_no_biases_and_shared_embedding():
  params = _init(TINY, _tokens(0, (1, 4)))
  names = ["/".join(str(k.key) for k in path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
  assert not any("bias" in n for n in names), names
  assert not any("logits" in n for n in names), "output projection must reuse token_embedder/embedding"


def _decode_all(model, params, tokens, explicit_positions=False):
  """Feeds `tokens` one at a time through the KV cache; returns the stacked step logits."""
  b, l = tokens.shape
  _, state = jax.jit(lambda p, t: model.apply({"params": p}, t, decode=True, mutable=["cache"]))(
      params, jnp.zeros((b, l), jnp.int32))

  @jax.jit
  def step(p, cache, tok, i):
    positions = jnp.full((b, 1), i, jnp.int32) if explicit_positions else None
    return model.apply({"params": p, "cache": cache}, tok, decoder_positions=positions, decode=True,
                       mutable=["cache"])

  outs, cache = [], state["cache"]
  for i in range(l):
    logits, state = step(params, cache, tokens[:, i:i + 1], i)
    cache = state["cache"]
    outs.append(logits[:, 0])
  return jnp.stack(outs, axis=1)


@pytest.mark.slow
@pytest.mark.parametrize("scan,remat", [(False, "none"), (True, "full")])  # the 540B recipe's setting
def test_kv_cache_decoding_equals_full_recompute(scan, remat):
  cfg = palm.PaLMConfig(**{**TINY.__dict__, "scan_layers": scan, "remat_policy": remat})
  tokens = _tokens(1, (2, 6))
  model = palm.DecoderOnlyLM(cfg)
  params = model.init(jax.random.key(0), tokens)["params"]
  full = jax.jit(model.apply)({"params": params}, tokens)
  np.testing.assert_allclose(_decode_all(model, params, tokens), full, atol=1e-4, rtol=1e-4)


def test_decoding_with_explicit_positions():
  tokens = _tokens(2, (1, 4))
  model = palm.DecoderOnlyLM(TINY)
  params = model.init(jax.random.key(0), tokens)["params"]
  full = jax.jit(model.apply)({"params": params}, tokens)
  np.testing.assert_allclose(_decode_all(model, params, tokens, explicit_positions=True), full,
                             atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_scan_equals_unrolled_and_names_layers_axis():
  tokens = _tokens(3, (2, 5))
  unrolled = _init(TINY, tokens)
  scan_cfg = palm.PaLMConfig(**{**TINY.__dict__, "scan_layers": True})
  boxed = palm.DecoderOnlyLM(scan_cfg).init(jax.random.key(0), tokens)["params"]
  specs = nn.get_partition_spec(boxed)
  assert specs["layers"]["mlp"]["wi_0"]["kernel"] == P("layers", "embed", "mlp")
  assert specs["layers"]["attention"]["query"]["kernel"] == P("layers", "embed", "heads", "kv")
  stacked = _restack(unrolled, TINY.num_layers)
  assert jax.tree.map(jnp.shape, stacked) == jax.tree.map(jnp.shape, nn.unbox(boxed))
  a = jax.jit(palm.DecoderOnlyLM(TINY).apply)({"params": unrolled}, tokens)
  b = jax.jit(palm.DecoderOnlyLM(scan_cfg).apply)({"params": stacked}, tokens)
  np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


def _loss(cfg, params, tokens):
  logits = palm.DecoderOnlyLM(cfg).apply({"params": params}, tokens[:, :-1])
  logp = jax.nn.log_softmax(logits)
  return -jnp.mean(jnp.take_along_axis(logp, tokens[:, 1:, None], -1))


@pytest.mark.slow
@pytest.mark.parametrize("scan", [False, True])
def test_remat_policies_same_loss_and_grads(scan):
  tokens = _tokens(4, (2, 9))
  params = _init(TINY, tokens[:, :-1])
  if scan:
    params = _restack(params, TINY.num_layers)
  ref_cfg = palm.PaLMConfig(**{**TINY.__dict__, "scan_layers": scan})
  ref_loss, ref_grads = jax.jit(jax.value_and_grad(lambda p: _loss(ref_cfg, p, tokens)))(params)
  assert float(jnp.abs(jax.tree.leaves(ref_grads)[0]).sum()) > 0
  for policy in ("full", "dots", "dots_with_no_batch_dims"):
    cfg = palm.PaLMConfig(**{**TINY.__dict__, "scan_layers": scan, "remat_policy": policy})
    loss, grads = jax.jit(jax.value_and_grad(lambda p: _loss(cfg, p, tokens)))(params)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6, err_msg=policy)
    jax.tree.map(lambda g, r: np.testing.assert_allclose(g, r, atol=1e-6, rtol=1e-5, err_msg=policy),
                 grads, ref_grads)


@pytest.mark.slow
@pytest.mark.parametrize("bidirectional", [False, True])
def test_prefix_lm_mask(bidirectional):
  cfg = palm.PaLMConfig(**{**TINY.__dict__, "prefix_bidirectional": bidirectional})
  tokens = _tokens(5, (1, 8))
  prefix = jnp.array([[1, 1, 1, 1, 0, 0, 0, 0]], jnp.int32)
  params = _init(cfg, tokens)
  apply = jax.jit(lambda t: palm.DecoderOnlyLM(cfg).apply({"params": params}, t, decoder_causal_attention=prefix))
  base = apply(tokens)
  later_prefix_changed = apply(tokens.at[0, 3].set(tokens[0, 3] % 60 + 2))
  earlier_moved = not np.allclose(base[0, 1], later_prefix_changed[0, 1], atol=1e-6)
  assert earlier_moved == bidirectional
  # Targets stay causal either way: a later target never changes an earlier position.
  target_changed = apply(tokens.at[0, 6].set(tokens[0, 6] % 60 + 2))
  np.testing.assert_allclose(base[0, :6], target_changed[0, :6], atol=1e-6)


@pytest.mark.slow
def test_packed_examples_match_unpacked():
  a, b = _tokens(6, (1, 3)), _tokens(7, (1, 5))
  packed = jnp.concatenate([a, b], axis=1)
  segments = jnp.array([[1, 1, 1, 2, 2, 2, 2, 2]], jnp.int32)
  positions = jnp.array([[0, 1, 2, 0, 1, 2, 3, 4]], jnp.int32)
  params = _init(TINY, packed)
  model = palm.DecoderOnlyLM(TINY)
  out = model.apply({"params": params}, packed, decoder_segment_ids=segments, decoder_positions=positions)
  np.testing.assert_allclose(out[:, :3], model.apply({"params": params}, a), atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(out[:, 3:], model.apply({"params": params}, b), atol=1e-5, rtol=1e-5)


def test_dropout_is_used_when_not_deterministic():
  cfg = palm.PaLMConfig(**{**TINY.__dict__, "dropout_rate": 0.5})
  tokens = _tokens(8, (2, 5))
  params = _init(cfg, tokens)
  model = palm.DecoderOnlyLM(cfg)
  det = model.apply({"params": params}, tokens)
  r1 = model.apply({"params": params}, tokens, deterministic=False, rngs={"dropout": jax.random.key(1)})
  assert not np.allclose(det, r1)
  np.testing.assert_allclose(det, model.apply({"params": params}, tokens, deterministic=True))


def test_config_errors_are_specific():
  with pytest.raises(ValueError, match="remat_policy"):
    palm.PaLMConfig(remat_policy="some")
  with pytest.raises(ValueError, match="num_kv_heads"):
    palm.PaLMConfig(num_heads=6, num_kv_heads=4)
