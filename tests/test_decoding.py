"""Decoding: cache equals recompute, searches agree where they must, batches equal single
rows, sharded equals unsharded, beam search equals a plain reference and transformers."""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax import decoding, partitioning
from flan_jax.models import palm, t5
from tests.helpers import TINY_T5

N = 8  # max_decode_len
TINY_PALM = palm.PaLMConfig(vocab_size=256, emb_dim=64, num_heads=4, num_kv_heads=1, head_dim=16, num_layers=2,
                            mlp_dim=128)


def _prompts(seed, batch=5, length=10, vocab=256):
  """Right-padded rows of different lengths (one of them full)."""
  rng = np.random.default_rng(seed)
  x = rng.integers(2, vocab, (batch, length)).astype(np.int32)
  for i, n in enumerate(rng.integers(2, length, batch)):
    if i:
      x[i, n:] = 0
  return x


@pytest.fixture(scope="module")
def t5_setup():
  model = t5.Transformer(TINY_T5)
  x = jnp.ones((1, 1), jnp.int32)
  params = jax.device_get(model.init(jax.random.key(0), x, x)["params"])
  dec = decoding.Decoder(model)
  return model, params, dec, dec.put_params(params)


@pytest.fixture(scope="module", params=[False, True], ids=["palm", "palm_scanned"])
def palm_setup(request):
  model = palm.Decoder(dataclasses.replace(TINY_PALM, scan_layers=request.param))
  params = jax.device_get(model.init(jax.random.key(1), jnp.ones((1, 1), jnp.int32))["params"])
  dec = decoding.Decoder(model)
  return model, params, dec, dec.put_params(params)


def _greedy_by_recompute_t5(model, params, inputs):
  """Greedy decoding without a cache: a full teacher-forced pass per new token."""
  forward = jax.jit(lambda d: model.apply({"params": params}, inputs, d))
  dec_in = np.zeros((len(inputs), N + 1), np.int32)
  out = np.zeros((len(inputs), N), np.int32)
  done = np.zeros(len(inputs), bool)
  for i in range(N):
    tok = np.asarray(jnp.argmax(forward(dec_in[:, :N])[:, i], -1))
    tok = np.where(done, 0, tok)
    out[:, i] = dec_in[:, i + 1] = tok
    done |= tok == decoding.EOS_ID
  return out


def _greedy_by_recompute_palm(model, params, prompts):
  """Per row: [0] + prompt, then argmax of a full forward pass over the whole sequence."""
  rows = []
  length = prompts.shape[1] + 1 + N
  forward = jax.jit(lambda s: model.apply({"params": params}, s))
  for prompt in prompts:
    seq = [0] + [int(t) for t in prompt if t]
    gen = []
    for _ in range(N):
      padded = np.zeros((1, length), np.int32)
      padded[0, :len(seq)] = seq
      tok = int(jnp.argmax(forward(padded)[0, len(seq) - 1]))
      gen.append(tok)
      seq.append(tok)
      if tok == decoding.EOS_ID:
        break
    rows.append(gen + [0] * (N - len(gen)))
  return np.array(rows, np.int32)


# ------------------------------------------------------------------------------------------
# Cache equals recompute.


def test_t5_cached_greedy_equals_full_recompute(t5_setup):
  model, params, dec, p = t5_setup
  inputs = _prompts(0)
  out = dec.greedy(p, inputs, max_decode_len=N)
  np.testing.assert_array_equal(out.tokens, _greedy_by_recompute_t5(model, params, inputs))
  # The reported score is the sum of the tokens' log-probs: what scoring the output gives.
  np.testing.assert_allclose(out.scores, dec.score(p, inputs, out.tokens), rtol=1e-5, atol=1e-4)


def test_palm_cached_greedy_equals_full_recompute(palm_setup):
  model, params, dec, p = palm_setup
  prompts = _prompts(1, batch=4, length=6)
  out = dec.greedy(p, prompts, max_decode_len=N)
  np.testing.assert_array_equal(out.tokens, _greedy_by_recompute_palm(model, params, prompts))
  np.testing.assert_allclose(out.scores, dec.score(p, prompts, out.tokens), rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------------------------------
# Searches that must agree.


def test_beam_one_and_degenerate_sampling_equal_greedy(t5_setup):
  _, _, dec, p = t5_setup
  inputs = _prompts(2)
  greedy = dec.greedy(p, inputs, max_decode_len=N).tokens
  np.testing.assert_array_equal(dec.beam_search(p, inputs, num_beams=1, alpha=0.0, max_decode_len=N).tokens, greedy)
  np.testing.assert_array_equal(dec.sample(p, inputs, temperature=0.0, max_decode_len=N).tokens, greedy)
  # Filters that leave one candidate make sampling greedy at any temperature.
  np.testing.assert_array_equal(dec.sample(p, inputs, seed=3, temperature=2.0, top_k=1, max_decode_len=N).tokens,
                                greedy)
  np.testing.assert_array_equal(dec.sample(p, inputs, seed=4, temperature=2.0, top_p=1e-6, max_decode_len=N).tokens,
                                greedy)


def test_samples_stay_in_the_top_k_and_depend_on_the_seed(t5_setup):
  model, params, dec, p = t5_setup
  inputs = _prompts(3, batch=8)
  a = dec.sample(p, inputs, seed=0, temperature=1.5, top_k=3, max_decode_len=N).tokens
  b = dec.sample(p, inputs, seed=1, temperature=1.5, top_k=3, max_decode_len=N).tokens
  assert (a != b).any()
  np.testing.assert_array_equal(a, dec.sample(p, inputs, seed=0, temperature=1.5, top_k=3, max_decode_len=N).tokens)
  dec_in = np.pad(a[:, :-1], ((0, 0), (1, 0)))
  logits = np.asarray(model.apply({"params": params}, inputs, dec_in))
  top3 = np.argsort(-logits, axis=-1)[..., :3]
  real = np.cumsum(a == decoding.EOS_ID, axis=1) - (a == decoding.EOS_ID) == 0  # up to the first EOS
  assert ((a[..., None] == top3).any(-1) | ~real).all()


def test_filter_logits():
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
  keep = lambda x: np.asarray(x > decoding.NEG_INF / 2)[0].tolist()
  assert keep(decoding.filter_logits(logits, top_k=2)) == [True, True, False, False]
  assert keep(decoding.filter_logits(logits, top_p=0.5)) == [True, False, False, False]
  assert keep(decoding.filter_logits(logits, top_p=0.6)) == [True, True, False, False]
  assert keep(decoding.filter_logits(logits, top_p=0.9)) == [True, True, True, False]
  assert keep(decoding.filter_logits(logits, top_k=3, top_p=0.9)) == [True, True, True, False]


def test_min_decode_len_defers_eos(t5_setup):
  _, _, dec, p = t5_setup
  inputs = _prompts(4)
  out = dec.greedy(p, inputs, max_decode_len=N, min_decode_len=N)
  assert (out.tokens != decoding.EOS_ID).all() and (out.tokens != 0).all()


# ------------------------------------------------------------------------------------------
# Batches of padded rows decode as the rows do alone.


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_t5_padded_batch_equals_rows_one_by_one(t5_setup, method):
  _, _, dec, p = t5_setup
  inputs = _prompts(5)
  config = decoding.DecodeConfig(max_decode_len=N, num_beams=3 if method == "beam" else 1)
  batch = dec.decode(p, inputs, config)
  for i, row in enumerate(inputs):
    alone = dec.decode(p, row[None, :max(1, int(np.count_nonzero(row)))], config)
    np.testing.assert_array_equal(alone.tokens[0], batch.tokens[i])
    np.testing.assert_allclose(alone.scores[0], batch.scores[i], rtol=1e-4, atol=1e-4)


def test_palm_padded_batch_equals_rows_one_by_one(palm_setup):
  _, _, dec, p = palm_setup
  prompts = _prompts(6, batch=4, length=6)
  config = decoding.DecodeConfig(max_decode_len=N, num_beams=3, alpha=0.6)
  batch = dec.decode(p, prompts, config)
  for i, row in enumerate(prompts):
    alone = dec.decode(p, row[None, :np.count_nonzero(row)], config)
    np.testing.assert_array_equal(alone.beams[0], batch.beams[i])
    np.testing.assert_allclose(alone.beam_scores[0], batch.beam_scores[i], rtol=1e-4, atol=1e-4)


def test_model_parallel_mesh_equals_single_device(t5_setup):
  model, params, dec, p = t5_setup
  inputs = _prompts(7, batch=4)
  one = decoding.Decoder(model, partitioning.make_mesh(devices=jax.devices()[:1]))
  tp = decoding.Decoder(model, partitioning.make_mesh(partitioning.MeshConfig(model_parallel=2)))
  config = decoding.DecodeConfig(max_decode_len=N, num_beams=2, alpha=0.6)
  want = one.decode(one.put_params(params), inputs, config)
  got = tp.decode(tp.put_params(params), inputs, config)
  np.testing.assert_array_equal(got.beams, want.beams)
  np.testing.assert_allclose(got.beam_scores, want.beam_scores, rtol=1e-5)


# ------------------------------------------------------------------------------------------
# Beam search against a plain reference, on a toy model whose next-token distribution
# depends on the whole history through the cache (so the cache must follow its beam).

V, M = 6, 101
TABLE = np.random.default_rng(0).normal(size=(M, V)).astype(np.float32) * 2.0
TABLE[:, decoding.EOS_ID] += 0.5  # EOS common enough to finish hypotheses early


def _hash(h, tok):
  return (h * 31 + tok + 7) % M


def _toy_step(context, tokens_Bx1, index, cache):
  h = _hash(cache["h"], tokens_Bx1[:, 0])
  return jnp.asarray(TABLE)[h], {"h": h}


def _reference_beam_search(prefix, k, n, alpha):
  """Canonical beam search in plain python: keep the k best extensions; those ending (EOS
  or length n) among them finish; stop when the best live beam, at length n, cannot beat
  the worst of k finished ones. Scores: log-prob sum / ((5 + len) / 6) ** alpha."""
  logp = TABLE - np.log(np.exp(TABLE).sum(-1, keepdims=True))
  h = 0
  for tok in prefix:  # the start token 0, then the prompt
    h = _hash(h, tok)
  live, finished = [(0.0, [], h)], []
  bp = lambda length: ((5 + length) / 6) ** alpha
  for step in range(n):
    cands = sorted(((s + logp[hh, v], seq + [v], _hash(hh, v)) for s, seq, hh in live for v in range(V)),
                   key=lambda c: -c[0])[:2 * k]
    for rank, (s, seq, _) in enumerate(cands):
      if rank < k and (seq[-1] == decoding.EOS_ID or step == n - 1):
        finished.append((s / bp(step + 1), seq))
    finished = sorted(finished, key=lambda f: -f[0])[:k]
    live = [c for c in cands if c[1][-1] != decoding.EOS_ID][:k]
    if step == n - 1 or (len(finished) == k and finished[-1][0] >= live[0][0] / bp(n)):
      break
  return finished


@pytest.mark.parametrize("k,alpha", [(1, 0.0), (2, 0.6), (3, 0.0), (4, 1.5)])
def test_beam_search_equals_reference(k, alpha):
  n = 7
  prefixes = [[0], [0, 3, 4], [0, 5], [0, 2, 2, 3]]  # decoder prefixes: start token, then prompt
  prefix = np.array([p + [0] * (4 - len(p)) for p in prefixes], np.int32)
  prefix_len = np.array([len(p) for p in prefixes], np.int32)
  cache = {"h": jnp.zeros((len(prefixes),), jnp.int32)}
  beams, scores = jax.jit(lambda c, x, l: decoding.beam_search(
      _toy_step, {}, c, {"h": 0}, x, l, num_beams=k, max_decode_len=n, alpha=alpha))(cache, prefix, prefix_len)
  for i, p in enumerate(prefixes):
    want = _reference_beam_search(p, k, n, alpha)
    for j, (score, seq) in enumerate(want):
      np.testing.assert_array_equal(beams[i, j], seq + [0] * (n - len(seq)), err_msg=f"row {i} beam {j}")
      assert math.isclose(float(scores[i, j]), score, rel_tol=1e-5), (i, j)


# ------------------------------------------------------------------------------------------
# transformers' generate on the same weights.


@pytest.fixture(scope="module")
def hf_pair(tmp_path_factory):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from flan_jax import checkpoints
  from flan_jax.convert import hf
  transformers.logging.set_verbosity_error()
  vocab = 48  # small, so that EOS often ranks among the best candidates
  torch.manual_seed(0)
  config = transformers.T5Config(vocab_size=vocab, d_model=32, d_ff=64, d_kv=8, num_heads=4, num_layers=2,
                                 num_decoder_layers=2, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                                 dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
  model = transformers.T5ForConditionalGeneration(config).eval()
  with torch.no_grad():
    model.lm_head.weight.normal_(0.0, 1.0)
    for name, w in model.named_parameters():
      if "layer_norm" in name:
        w.uniform_(0.5, 1.5)
  root = tmp_path_factory.mktemp("hf_decode")
  model.save_pretrained(str(root / "hf"), safe_serialization=True)
  cfg = hf.from_hf(str(root / "hf"), str(root / "flan"))
  dec = decoding.Decoder(t5.Transformer(cfg))
  return torch, model, dec, dec.put_params(checkpoints.load_params(str(root / "flan"))), vocab


@pytest.mark.parametrize("num_beams", [1, 4])
def test_greedy_and_beam_equal_transformers_generate(hf_pair, num_beams):
  torch, model, dec, p, vocab = hf_pair
  n = 12
  inputs = _prompts(8, batch=8, length=9, vocab=vocab)
  with torch.no_grad():
    want = model.generate(input_ids=torch.from_numpy(inputs).long(),
                          attention_mask=torch.from_numpy(inputs != 0).long(), max_new_tokens=n,
                          num_beams=num_beams, do_sample=False, length_penalty=0.0, early_stopping=False,
                          num_return_sequences=1).numpy()[:, 1:]
  want = np.pad(want, ((0, 0), (0, n - want.shape[1])))
  got = dec.decode(p, inputs, decoding.DecodeConfig(max_decode_len=n, num_beams=num_beams, alpha=0.0))
  assert (got.tokens == decoding.EOS_ID).any(), "the test should exercise EOS handling"
  np.testing.assert_array_equal(got.tokens, want)


# ------------------------------------------------------------------------------------------
# Scoring.


def test_score_options_equal_teacher_forced_log_likelihoods(t5_setup, palm_setup):
  for model, params, dec, p in (t5_setup, palm_setup):
    inputs = [[5, 6, 7, 1], [9, 1]]
    options = [[[3, 1], [4, 4, 1], [8, 1]], [[2, 1]]]
    got = dec.score_options(p, inputs, options, batch_size=3)
    assert [g.shape for g in got] == [(3,), (1,)]
    for x, opts, scores in zip(inputs, options, got):
      for o, s in zip(opts, scores):
        if isinstance(model, t5.Transformer):
          logits = model.apply({"params": params}, np.array([x]), np.array([[0] + o[:-1]]))[0]
          positions = range(len(o))
        else:
          logits = model.apply({"params": params}, np.array([[0] + x + o[:-1]]))[0]
          positions = range(len(x), len(x) + len(o))
        logp = jax.nn.log_softmax(logits)
        want = sum(float(logp[pos, tok]) for pos, tok in zip(positions, o))
        assert math.isclose(float(s), want, rel_tol=1e-5, abs_tol=1e-4)


def test_config_errors_are_specific():
  with pytest.raises(ValueError, match="beam search .* temperature"):
    decoding.DecodeConfig(num_beams=4, temperature=0.7)
  with pytest.raises(ValueError, match="top_p"):
    decoding.DecodeConfig(top_p=0.0)
