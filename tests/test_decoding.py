"""Decoding: cache equals recompute, batches equal single rows, sharded equals unsharded,
the searches agree where they must and equal a plain reference and transformers' generate.

Compiling a decoding loop takes seconds, so the model tests share one batch shape and a
few settings; the search algorithms themselves are also checked on a toy model.
"""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.checkpointing import convert_cli
from flan_jax.inference import decoding
from flan_jax.core import partitioning
from flan_jax.models import palm, t5
from tests.helpers import TINY_T5

N = 8  # max_decode_len
B, S = 5, 10  # batch and input length of the model tests
GREEDY = decoding.DecodeConfig(max_decode_len=N, search="greedy")
BEAM = decoding.DecodeConfig(max_decode_len=N, num_beams=3, alpha=0.6)
TINY_PALM = palm.PaLMConfig(vocab_size=256, emb_dim=64, num_heads=4, num_kv_heads=1, head_dim=16, num_layers=2,
                            mlp_dim=128)


def _prompts(seed, batch=B, length=S, vocab=256):
  """Right-padded rows of different lengths; row 0 uses the full length."""
  rng = np.random.default_rng(seed)
  x = rng.integers(2, vocab, (batch, length)).astype(np.int32)
  for i, n in enumerate(rng.integers(2, length, batch)):
    if i:
      x[i, n:] = 0
  return x


def _alone(inputs, i):
  """Row i among empty rows: same shape (no recompilation), no other row to interact with."""
  out = np.zeros_like(inputs)
  out[0] = inputs[i]
  return out


@pytest.fixture(scope="module")
def t5_setup():
  model = t5.Transformer(TINY_T5)
  x = jnp.ones((1, 1), jnp.int32)
  params = jax.device_get(jax.jit(model.init)(jax.random.key(0), x, x)["params"])
  dec = decoding.SequenceDecoder(model)  # 8 virtual devices, data parallel
  return model, params, dec, dec.put_params(params)


@pytest.fixture(scope="module", params=[False, True], ids=["unrolled", "scanned"])
def palm_setup(request):
  model = palm.DecoderOnlyLM(dataclasses.replace(TINY_PALM, scan_layers=request.param))
  params = jax.device_get(jax.jit(model.init)(jax.random.key(1), jnp.ones((1, 1), jnp.int32))["params"])
  dec = decoding.SequenceDecoder(model)
  return model, params, dec, dec.put_params(params)


# ------------------------------------------------------------------------------------------
# Cache equals recompute.


def _greedy_by_recompute_t5(model, params, inputs):
  """Greedy decoding without a cache: one full teacher-forced pass per new token."""
  forward = jax.jit(lambda d: model.apply({"params": params}, inputs, d))
  dec_in = np.zeros((len(inputs), N), np.int32)
  out = np.zeros((len(inputs), N), np.int32)
  done = np.zeros(len(inputs), bool)
  for i in range(N):
    tok = np.where(done, 0, np.asarray(jnp.argmax(forward(dec_in)[:, i], -1)))
    out[:, i] = tok
    if i + 1 < N:
      dec_in[:, i + 1] = tok
    done |= tok == decoding.EOS_ID
  return out


def _greedy_by_recompute_palm(model, params, prompts):
  """Per row: [0] + prompt, then the argmax of a full forward pass, token by token."""
  length = prompts.shape[1] + 1 + N
  forward = jax.jit(lambda s: model.apply({"params": params}, s))
  rows = []
  for prompt in prompts:
    seq, gen = [0] + [int(t) for t in prompt if t], []
    while len(gen) < N and (not gen or gen[-1] != decoding.EOS_ID):
      padded = np.zeros((1, length), np.int32)
      padded[0, :len(seq)] = seq
      tok = int(jnp.argmax(forward(padded)[0, len(seq) - 1]))
      gen.append(tok)
      seq.append(tok)
    rows.append(gen + [0] * (N - len(gen)))
  return np.array(rows, np.int32)


@pytest.mark.slow
def test_t5_cached_greedy_equals_full_recompute(t5_setup):
  model, params, dec, p = t5_setup
  inputs = _prompts(0)
  out = dec.decode(p, inputs, GREEDY)
  np.testing.assert_array_equal(out.tokens, _greedy_by_recompute_t5(model, params, inputs))
  # The reported score is the sum of the tokens' log-probs: what scoring the output gives.
  np.testing.assert_allclose(out.scores, dec.score(p, inputs, out.tokens), rtol=1e-5, atol=1e-4)


@pytest.mark.slow
def test_palm_cached_greedy_equals_full_recompute(palm_setup):
  model, params, dec, p = palm_setup
  prompts = _prompts(1)
  out = dec.decode(p, prompts, GREEDY)
  np.testing.assert_array_equal(out.tokens, _greedy_by_recompute_palm(model, params, prompts))


# ------------------------------------------------------------------------------------------
# Batches of padded rows decode as the rows do alone; sharding changes nothing.


@pytest.mark.slow
@pytest.mark.parametrize("config", [GREEDY, BEAM], ids=["greedy", "beam"])
def test_t5_padded_batch_equals_rows_one_by_one(t5_setup, config):
  _, _, dec, p = t5_setup
  inputs = _prompts(2)
  batch = dec.decode(p, inputs, config)
  for i in range(B):
    alone = dec.decode(p, _alone(inputs, i), config)
    np.testing.assert_array_equal(alone.tokens[0], batch.tokens[i], err_msg=f"row {i}")
    np.testing.assert_allclose(alone.scores[0], batch.scores[i], rtol=1e-4, atol=1e-4)
  # Nor does the amount of padding matter.
  shortest = int(np.argmin(np.count_nonzero(inputs, axis=1)))
  trimmed = dec.decode(p, inputs[shortest:shortest + 1, :np.count_nonzero(inputs[shortest])], config)
  np.testing.assert_array_equal(trimmed.tokens[0], batch.tokens[shortest])


@pytest.mark.slow
def test_palm_padded_beam_batch_equals_rows_one_by_one(palm_setup):
  _, _, dec, p = palm_setup
  prompts = _prompts(3)
  batch = dec.decode(p, prompts, BEAM)
  for i in range(B):
    alone = dec.decode(p, _alone(prompts, i), BEAM)
    np.testing.assert_array_equal(alone.beams[0], batch.beams[i], err_msg=f"row {i}")
    np.testing.assert_allclose(alone.beam_scores[0], batch.beam_scores[i], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_sharded_meshes_equal_single_device(t5_setup):
  model, params, dec, p = t5_setup
  inputs = _prompts(4)
  one = decoding.SequenceDecoder(model, partitioning.make_mesh(devices=jax.devices()[:1]))
  tp = decoding.SequenceDecoder(model, partitioning.make_mesh(partitioning.MeshConfig(model_parallel=2)))
  want = one.decode(one.put_params(params), inputs, BEAM)
  for d, q in ((dec, p), (tp, tp.put_params(params))):
    got = d.decode(q, inputs, BEAM)
    np.testing.assert_array_equal(got.beams, want.beams)
    np.testing.assert_allclose(got.beam_scores, want.beam_scores, rtol=1e-5)


@pytest.mark.slow
def test_samples_stay_in_the_top_k_and_follow_the_seed(t5_setup):
  model, params, dec, p = t5_setup
  inputs = _prompts(5)
  a = dec.sample(p, inputs, seed=0, temperature=1.5, top_k=3, max_decode_len=N).tokens
  b = dec.sample(p, inputs, seed=1, temperature=1.5, top_k=3, max_decode_len=N).tokens
  assert (a != b).any()
  np.testing.assert_array_equal(a, dec.sample(p, inputs, seed=0, temperature=1.5, top_k=3, max_decode_len=N).tokens)
  logits = np.asarray(jax.jit(model.apply)({"params": params}, inputs, np.pad(a[:, :-1], ((0, 0), (1, 0)))))
  top3 = np.argsort(-logits, axis=-1)[..., :3]
  before_eos = np.cumsum(a == decoding.EOS_ID, axis=1) - (a == decoding.EOS_ID) == 0
  assert ((a[..., None] == top3).any(-1) | ~before_eos).all()


# ------------------------------------------------------------------------------------------
# The searches on a toy model whose next-token distribution depends on the whole history
# through its cache (so the cache must follow its beam), against plain references.

V, M = 6, 101
TABLE = np.random.default_rng(0).normal(size=(M, V)).astype(np.float32) * 2.0
TABLE[:, decoding.EOS_ID] += 0.5  # EOS common enough to finish hypotheses early
LOGP = TABLE - np.log(np.exp(TABLE).sum(-1, keepdims=True))
# Decoder prefixes: the start token 0, then (decoder-only models) a prompt.
PREFIXES = [[0], [0, 3, 4], [0, 5], [0, 2, 2, 3], [0, 4]]


def _hash(h, tok):
  return (h * 31 + tok + 7) % M


def _toy_step(context, tokens_Bx1, index, cache):
  h = _hash(cache["h"], tokens_Bx1[:, 0])
  return jnp.asarray(TABLE)[h], {"h": h}


def _toy_inputs():
  width = max(map(len, PREFIXES))
  prefix = np.array([p + [0] * (width - len(p)) for p in PREFIXES], np.int32)
  return {"h": jnp.zeros((len(PREFIXES),), jnp.int32)}, prefix, np.array([len(p) for p in PREFIXES], np.int32)


def _toy_sample(n, **kw):
  cache, prefix, prefix_len = _toy_inputs()
  fn = jax.jit(lambda c, x, l: decoding.temperature_sample(_toy_step, {}, c, x, l, jax.random.key(0),
                                                           max_decode_len=n, **kw))
  return np.asarray(fn(cache, prefix, prefix_len)[0])


def _toy_beam(n, k, alpha, min_decode_len=0):
  cache, prefix, prefix_len = _toy_inputs()
  fn = jax.jit(lambda c, x, l: decoding.beam_search(_toy_step, {}, c, {"h": 0}, x, l, num_beams=k,
                                                    max_decode_len=n, alpha=alpha, min_decode_len=min_decode_len))
  beams, scores = fn(cache, prefix, prefix_len)
  return np.asarray(beams), np.asarray(scores)


def _state_after(prefix):
  h = 0
  for tok in prefix:
    h = _hash(h, tok)
  return h


def _reference_greedy(prefix, n, min_decode_len=0):
  h, out = _state_after(prefix), []
  while len(out) < n and (not out or out[-1] != decoding.EOS_ID):
    logp = LOGP[h].copy()
    if len(out) < min_decode_len:
      logp[decoding.EOS_ID] = -np.inf
    out.append(int(np.argmax(logp)))
    h = _hash(h, out[-1])
  return out + [0] * (n - len(out))


def _reference_beam_search(prefix, k, n, alpha):
  """T5X's beam search in plain python: of the 2k best extensions, every EOS finishes a
  hypothesis and the k best others stay live; length for the brevity penalty counts the
  prompt (the prefix minus the start token); beams at length n never finish. Scores:
  log-prob sum / ((5 + len) / 6) ** alpha. Returns the k best finished (or live) beams."""
  live, finished = [(0.0, [], _state_after(prefix))], []
  bp = lambda length: ((5 + length) / 6) ** alpha
  for step in range(n):
    cands = sorted(((s + LOGP[h, v], seq + [v], _hash(h, v)) for s, seq, h in live for v in range(V)),
                   key=lambda c: -c[0])[:2 * k]
    finished += [(s / bp(len(prefix) - 1 + step + 1), seq) for s, seq, _ in cands if seq[-1] == decoding.EOS_ID]
    finished = sorted(finished, key=lambda f: -f[0])[:k]
    live = [c for c in cands if c[1][-1] != decoding.EOS_ID][:k]
  return finished if finished else [(s, seq) for s, seq, _ in live]


@pytest.mark.parametrize("k,alpha", [(2, 0.6), (3, 0.0), (4, 1.5)])
def test_beam_search_equals_reference(k, alpha):
  n = 7
  beams, scores = _toy_beam(n, k, alpha)
  for i, prefix in enumerate(PREFIXES):
    for j, (score, seq) in enumerate(_reference_beam_search(prefix, k, n, alpha)):
      np.testing.assert_array_equal(beams[i, j], seq + [0] * (n - len(seq)), err_msg=f"row {i} beam {j}")
      assert math.isclose(scores[i, j], score, rel_tol=1e-5), (i, j)


def test_greedy_beam_one_and_degenerate_sampling_agree():
  n = 9
  greedy = _toy_sample(n)
  np.testing.assert_array_equal(greedy, [_reference_greedy(p, n) for p in PREFIXES])
  assert (greedy == decoding.EOS_ID).any() and (greedy[:, -1] != 0).any()  # both ways of ending
  # (Beam search with one beam is not greedy in T5X: an EOS ranked second finishes a hypothesis.)
  # Filters that leave one candidate make sampling greedy at any temperature.
  np.testing.assert_array_equal(_toy_sample(n, temperature=3.0, top_k=1), greedy)
  np.testing.assert_array_equal(_toy_sample(n, temperature=3.0, top_p=1e-6), greedy)
  sampled = _toy_sample(n, temperature=3.0)
  assert (sampled != greedy).any()


def test_min_decode_len_defers_eos():
  n = 9
  got = _toy_sample(n, min_decode_len=5)
  np.testing.assert_array_equal(got, [_reference_greedy(p, n, min_decode_len=5) for p in PREFIXES])
  assert (got[:, :5] != decoding.EOS_ID).all()
  beams, _ = _toy_beam(n, 2, 0.0, min_decode_len=n)
  assert (beams != decoding.EOS_ID).all()


def test_filter_logits():
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
  keep = lambda x: np.asarray(x > decoding.NEG_INF / 2)[0].tolist()
  assert keep(decoding.filter_logits(logits, top_k=2)) == [True, True, False, False]
  assert keep(decoding.filter_logits(logits, top_p=0.5)) == [True, False, False, False]
  assert keep(decoding.filter_logits(logits, top_p=0.6)) == [True, True, False, False]
  assert keep(decoding.filter_logits(logits, top_p=0.9)) == [True, True, True, False]
  assert keep(decoding.filter_logits(logits, top_k=2, top_p=0.9)) == [True, True, False, False]


# ------------------------------------------------------------------------------------------
# transformers' generate on the same weights.


@pytest.fixture(scope="module")
def hf_pair(tmp_path_factory):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from flan_jax.checkpointing import checkpoints
  from flan_jax.checkpointing import hf
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
      elif name.endswith(("q.weight", "k.weight", "v.weight", "o.weight", "wi_0.weight", "wi_1.weight",
                          "wo.weight")):
        w.mul_(3.0)  # at HF's init scale the output barely depends on the context
  root = tmp_path_factory.mktemp("hf_decode")
  model.save_pretrained(str(root / "hf"), safe_serialization=True)
  cfg = convert_cli.from_hf(str(root / "hf"), str(root / "flan"))
  dec = decoding.SequenceDecoder(t5.Transformer(cfg))
  return torch, model, dec, dec.put_params(checkpoints.load_params(str(root / "flan"))), vocab


@pytest.mark.slow
def test_greedy_equals_transformers_generate(hf_pair):
  # (Beam search follows T5X, not transformers: there an EOS finishes a hypothesis only
  # among the top num_beams candidates and beams at max length join the finished ones.
  # tests/test_t5x_parity.py checks it against T5X's algorithm.)
  num_beams = 1
  torch, model, dec, p, vocab = hf_pair
  n = 12
  inputs = _prompts(8, batch=8, length=9, vocab=vocab)
  with torch.no_grad():
    want = model.generate(input_ids=torch.from_numpy(inputs).long(),
                          attention_mask=torch.from_numpy(inputs != 0).long(), max_new_tokens=n,
                          num_beams=num_beams, do_sample=False, length_penalty=0.0, early_stopping=False).numpy()
  want = np.pad(want[:, 1:], ((0, 0), (0, n + 1 - want.shape[1])))
  after_eos = np.cumsum(want == decoding.EOS_ID, axis=1) - (want == decoding.EOS_ID) > 0
  want[after_eos] = 0  # transformers' beam search pads with EOS, greedy with PAD
  got = dec.decode(p, inputs, decoding.DecodeConfig(max_decode_len=n, search="greedy"))
  ends = got.tokens == decoding.EOS_ID
  assert ends.any() and (~ends.any(axis=1)).any(), "the test should see rows end both at EOS and at n"
  np.testing.assert_array_equal(got.tokens, want)


# ------------------------------------------------------------------------------------------
# Scoring.


def _check_option_scores(model, params, dec, p, decoder_only):
  inputs = [[5, 6, 7, 1], [9, 1]]
  options = [[[3, 1], [4, 4, 1], [8, 1]], [[2, 1]]]
  got = dec.score_options(p, inputs, options, batch_size=3)
  assert [g.shape for g in got] == [(3,), (1,)]
  for x, opts, scores in zip(inputs, options, got):
    for o, s in zip(opts, scores):
      if decoder_only:  # one sequence: [0] + inputs + option, shifted right
        logits = model.apply({"params": params}, np.array([[0] + x + o[:-1]]))[0]
        positions = range(len(x), len(x) + len(o))
      else:
        logits = model.apply({"params": params}, np.array([x]), np.array([[0] + o[:-1]]))[0]
        positions = range(len(o))
      logp = jax.nn.log_softmax(logits)
      want = sum(float(logp[pos, tok]) for pos, tok in zip(positions, o))
      assert math.isclose(float(s), want, rel_tol=1e-5, abs_tol=1e-4)


@pytest.mark.slow
def test_t5_score_options_equal_teacher_forced_log_likelihoods(t5_setup):
  _check_option_scores(*t5_setup, decoder_only=False)


@pytest.mark.slow
def test_palm_score_options_equal_teacher_forced_log_likelihoods(palm_setup):
  if palm_setup[0].config.scan_layers:
    pytest.skip("scoring does not depend on the layer layout")
  _check_option_scores(*palm_setup, decoder_only=True)


def test_config_errors_are_specific():
  with pytest.raises(ValueError, match="beam search .* temperature"):
    decoding.DecodeConfig(num_beams=4, temperature=0.7)
  with pytest.raises(ValueError, match="top_p"):
    decoding.DecodeConfig(top_p=0.0)
  prefix_lm = decoding.SequenceDecoder(palm.DecoderOnlyLM(dataclasses.replace(TINY_PALM, prefix_bidirectional=True)))
  with pytest.raises(ValueError, match="prefix_bidirectional"):
    prefix_lm.decode({}, [[3, 4]], GREEDY)
