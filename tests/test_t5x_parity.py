"""Parity with T5X's training and decoding rules, against references re-typed here from
the facts of t5x/adafactor.py, t5x/decoding.py and t5x/losses.py (numpy, float64).

The Adafactor reference works on T5X's own layouts: the T5 attention kernels of
t5x/examples/t5 are 2-D (embed, joined_kv), factored by Adafactor's shape heuristic;
scanned stacks carry a `layers` axis that T5X's logical factor rules mark BATCH. Ours are
3-D [D, H, K] factored by logical names, so agreement is a real check of both paths.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.checkpointing import param_trees
from flan_jax.core import optim
from flan_jax.training import trainer
from flan_jax.models import palm, t5
from tests.helpers import make_trainer, random_encdec_batch

# ----------------------------------------------------------------------------------------
# Reference Adafactor (T5X's formulas, typed from the facts).

REF_RULES = {"vocab": "col", "embed": "row", "mlp": "col", "heads": "col", "kv": "col",
             "joined_kv": "col", "relpos_buckets": "none", "layers": "batch"}


def ref_plan(shape, axes=None, min_dim=128):
  """(averaging dims, (row dims, col dims) or None) as T5X parses a rule."""
  nd = len(shape)
  if axes is None or (nd <= 2 and "layers" not in axes):
    if nd < 2:
      return tuple(range(nd)), None
    order = sorted(range(nd), key=lambda i: shape[i])  # Python's sort is stable
    if shape[order[-2]] < min_dim:
      return tuple(range(nd)), None
    return tuple(range(nd)), ((order[-2],), (order[-1],))
  rule = [REF_RULES[a] for a in axes]
  if "row" not in rule or "col" not in rule:
    rule = ["none" if r in ("row", "col") else r for r in rule]
  avg = tuple(i for i, r in enumerate(rule) if r != "batch")
  rows = tuple(i for i, r in enumerate(rule) if r == "row")
  cols = tuple(i for i, r in enumerate(rule) if r == "col")
  return avg, ((rows, cols) if rows else None)


def ref_init(p, plan):
  _, fd = plan
  if fd is None:
    return {"v": np.zeros(p.shape)}
  rows, cols = fd
  return {"v_row": np.zeros(np.delete(p.shape, cols)), "v_col": np.zeros(np.delete(p.shape, rows))}


def ref_update(p, g, state, step, plan, lr=1e-3, decay_exp=0.8, clip=1.0, eps1=1e-30, eps2=1e-3):
  """One T5X Adafactor update of one parameter at Adafactor step `step` (new p, new state)."""
  avg, fd = plan
  p, g = p.astype(np.float64), g.astype(np.float64)
  # T5X evaluates the decay schedule in float32 (at step 1.1M its mixing rate 1 - decay
  # carries float32's rounding, ~1e-3 relative), then the update in the parameters' dtype.
  decay = np.float32(1.0) - (np.float32(step) + np.float32(1.0)) ** np.float32(-decay_exp)
  mixing = float(np.float32(1.0) - decay)
  decay = float(decay)
  scale = lr * np.maximum(np.sqrt(np.mean(p * p, axis=avg, keepdims=True)), eps2)
  g2 = g * g + eps1
  if fd is None:
    v = decay * state["v"] + mixing * g2
    y, new = g / np.sqrt(v), {"v": v}
  else:
    rows, cols = fd
    v_row = decay * state["v_row"] + mixing * g2.mean(axis=cols)
    v_col = decay * state["v_col"] + mixing * g2.mean(axis=rows)
    rows_left = tuple(r - sum(c < r for c in cols) for r in rows)
    r_fac = 1 / np.sqrt(v_row / v_row.mean(axis=rows_left, keepdims=True))
    y = g * np.expand_dims(r_fac, cols) * np.expand_dims(1 / np.sqrt(v_col), rows)
    new = {"v_row": v_row, "v_col": v_col}
  y = y / np.maximum(1.0, np.sqrt(np.mean(y * y, axis=avg, keepdims=True)) / clip)
  return p - scale * y, new


def _flat(tree):
  return {jax.tree_util.keystr(k, simple=True, separator="/"): np.asarray(v)
          for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _t5x_layout(name, x):
  """Our 3-D attention kernels as T5X's 2-D (embed, joined_kv) / (joined_kv, embed)."""
  if name.endswith(("query/kernel", "key/kernel", "value/kernel")):
    return x.reshape(x.shape[0], -1)
  if name.endswith("out/kernel"):
    return x.reshape(-1, x.shape[-1])
  return x


def _ref_run(params, grads_per_step, plan_of, first_step=0, layout=lambda n, x: x, states=None):
  """Reference over a flat {name: array} tree; returns {name: final param} in our layout
  (and the final second-moment statistics into `states`, if given)."""
  out = {}
  for name, p0 in params.items():
    p = layout(name, p0)
    plan = plan_of(name, p)
    state = ref_init(p, plan)
    for i, grads in enumerate(grads_per_step):
      p, state = ref_update(p, layout(name, grads[name]), state, first_step + i, plan)
    out[name] = p.reshape(p0.shape)
    if states is not None:
      states[name] = state
  return out


def _random_grads(params, steps, seed):
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(steps):
    out.append({n: (rng.standard_normal(x.shape) * 10.0 ** rng.uniform(-4, 0)).astype(np.float32)
                for n, x in params.items()})
  return out


def _ours_run(tx, params_tree, grads_per_step):
  treedef = jax.tree.structure(params_tree)
  names = list(_flat(params_tree))
  state = tx.init(params_tree)
  update = jax.jit(tx.update)
  p = params_tree
  for grads in grads_per_step:
    g = jax.tree.unflatten(treedef, [grads[n] for n in names])
    u, state = update(g, state, p)
    p = jax.tree.map(lambda a, b: a + b, p, u)
  return _flat(p), state


def _assert_close(ours, ref, start, what):
  for name in ref:
    got, want, p0 = ours[name].astype(np.float64), ref[name], start[name].astype(np.float64)
    rel = np.max(np.abs(got - want)) / np.max(np.abs(want))
    assert rel < 1e-6, f"{what} {name}: parameters differ by {rel:.2e} relative"
    # The update itself (3 steps of ~1e-3 relative) must agree too, not only the sum; ours
    # holds float32 parameters between steps, whose rounding is ~1e-4 of such updates.
    d_rel = np.max(np.abs((got - p0) - (want - p0))) / np.max(np.abs(want - p0))
    assert d_rel < 1e-3, f"{what} {name}: updates differ by {d_rel:.2e} relative"


T5_128 = t5.T5Config(vocab_size=256, emb_dim=128, num_heads=4, head_dim=32, mlp_dim=256,
                     num_encoder_layers=1, num_decoder_layers=1)
PALM_128 = palm.PaLMConfig(vocab_size=256, emb_dim=128, num_heads=2, num_kv_heads=1, head_dim=128,
                           num_layers=2, mlp_dim=256)


def _boxed_t5(cfg):
  tok = jnp.ones((1, 4), jnp.int32)
  return t5.Transformer(cfg).init(jax.random.key(0), tok, tok)["params"]


def _boxed_palm(cfg):
  return palm.DecoderOnlyLM(cfg).init(jax.random.key(1), jnp.ones((1, 4), jnp.int32))["params"]


def _bound_adafactor(boxed):
  tx, _ = optim.make_optimizer(optim.OptimizerConfig(), 100)
  return optim.bind_param_axes(tx, boxed)


@pytest.mark.slow
def test_adafactor_matches_t5x_on_t5_tiny_including_attention_kernels():
  boxed = _boxed_t5(T5_128)
  params = jax.device_get(jax.tree.map(lambda x: x, __import__("flax").linen.unbox(boxed)))
  flat = _flat(params)
  assert flat["encoder/layers_0/attention/query/kernel"].ndim == 3
  grads = _random_grads(flat, 3, seed=0)
  tx = _bound_adafactor(boxed)
  ours, state = _ours_run(tx, params, grads)
  ref = _ref_run(flat, grads, lambda n, p: ref_plan(p.shape), layout=_t5x_layout)
  _assert_close(ours, ref, flat, "T5")
  # The attention kernels' second moments are factored: a row and a column vector, no full copy.
  v_row, v = _flat(state.v_row), _flat(state.v)
  assert v_row["decoder/layers_0/self_attention/out/kernel"].shape == (128,)
  assert v["decoder/layers_0/self_attention/out/kernel"].shape == (1,)
  # The statistics shard by the logical names of the dims they keep (embed -> fsdp, mlp -> model).
  from flan_jax.core import partitioning
  specs = tx.state_logical_specs(params)
  is_spec = lambda x: isinstance(x, jax.sharding.PartitionSpec)
  to_mesh = lambda tree: {jax.tree_util.keystr(k, simple=True, separator="/"): partitioning.logical_to_mesh_spec(v)
                          for k, v in jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_spec)[0]}
  wi = "encoder/layers_0/mlp/wi_0/kernel"
  assert to_mesh(specs.v_row)[wi] == jax.sharding.PartitionSpec("fsdp")
  assert to_mesh(specs.v_col)[wi] == jax.sharding.PartitionSpec("model")
  assert to_mesh(specs.v_row)["decoder/layers_0/self_attention/out/kernel"] == jax.sharding.PartitionSpec("fsdp")


def _stack_layers(flat_unscanned, num_layers):
  """{layers_i/...} -> {layers/...} stacked on axis 0 (nn.scan's layout)."""
  out = {n: x for n, x in flat_unscanned.items() if not n.startswith("layers_")}
  for n in flat_unscanned:
    if n.startswith("layers_0/"):
      rest = n[len("layers_0/"):]
      out["layers/" + rest] = np.stack([flat_unscanned[f"layers_{i}/{rest}"] for i in range(num_layers)])
  return out


@pytest.mark.slow
def test_adafactor_scanned_palm_matches_t5x_and_unscanned():
  import flax.linen as nn
  import dataclasses
  boxed_u = _boxed_palm(PALM_128)
  boxed_s = _boxed_palm(dataclasses.replace(PALM_128, scan_layers=True))
  flat_u = _flat(nn.unbox(boxed_u))
  flat_s = _stack_layers(flat_u, PALM_128.num_layers)
  tree_s = nn.unbox(boxed_s)
  assert set(flat_s) == set(_flat(tree_s))
  treedef_s = jax.tree.structure(tree_s)
  params_s = jax.tree.unflatten(treedef_s, [flat_s[n] for n in _flat(tree_s)])
  grads_u = _random_grads(flat_u, 3, seed=1)
  grads_s = [_stack_layers(g, PALM_128.num_layers) for g in grads_u]

  ours_u, _ = _ours_run(_bound_adafactor(boxed_u), nn.unbox(boxed_u), grads_u)
  ours_s, _ = _ours_run(_bound_adafactor(boxed_s), params_s, grads_s)
  # Reference on T5X's scanned layout: the names decide (layers -> BATCH); the single
  # multi-query KV head is not a dim in T5X's (embed, kv) kernels.
  axes_s = {jax.tree_util.keystr(k, simple=True, separator="/"): tuple(v)
            for k, v in jax.tree_util.tree_flatten_with_path(
                nn.get_partition_spec(boxed_s), is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))[0]}

  def plan_s(name, p):
    axes = tuple(a for a in axes_s[name] if a is not None)
    return ref_plan(p.shape, axes if name.startswith("layers/") else None)

  squeeze = lambda n, x: x.reshape(tuple(s for a, s in zip(axes_s[n], x.shape) if a is not None))
  ref_s = _ref_run(flat_s, grads_s, plan_s, layout=squeeze)
  _assert_close(ours_s, ref_s, flat_s, "scanned PaLM")
  # Scanned == unscanned, layer by layer.
  stacked_u = _stack_layers(ours_u, PALM_128.num_layers)
  for name, x in ours_s.items():
    rel = np.max(np.abs(x - stacked_u[name])) / np.max(np.abs(x))
    assert rel < 1e-6, f"{name}: scanned and unscanned differ by {rel:.2e}"


def test_factor_rules_name_the_parameter_at_fault():
  with pytest.raises(ValueError, match=r"'mystery'.*decoder/foo.*factor_rules"):
    optim.factor_plan((256, 4, 256), ("embed", "mystery", "mlp"), name="decoder/foo")
  plan = optim.factor_plan((256, 4, 256), ("embed", "mystery", "mlp"), rules={
      **optim.LOGICAL_FACTOR_RULES, "mystery": optim.FactorDim.BATCH})
  assert plan == optim.FactorPlan((0, 2), (0,), (2,))


@pytest.mark.slow
def test_step_continuation_first_update_is_t5x_formula_at_that_step():
  """From an initial checkpoint at step 1,100,000 the first update equals T5X's at that step
  (second-moment decay 1 - 1,100,001^-0.8, not 0 as a restarted optimizer would use)."""
  batch = random_encdec_batch(batch_size=2, inputs_len=8, targets_len=4, vocab=256, seed=5)
  tr = make_trainer(num_devices=1, config=T5_128, batch=batch)
  state = tr.init_state(0)
  start = jax.device_get(state.params)
  state = tr.replace_params(state, start, initial_step=1_100_000)
  assert optim.adafactor_step(jax.device_get(state.opt_state)) == 1_100_000
  flat0 = _flat(start)
  grads = _random_grads(flat0, 1, seed=2)
  g_tree = jax.tree.unflatten(jax.tree.structure(start), [grads[0][n] for n in flat0])
  updates, opt_state = jax.jit(tr.optimizer.update)(g_tree, state.opt_state, state.params)
  assert optim.adafactor_step(jax.device_get(opt_state)) == 1_100_001
  ours = _flat(jax.tree.map(lambda p, u: p + u, start, jax.device_get(updates)))
  ref_states, ref0_states = {}, {}
  ref = _ref_run(flat0, grads, lambda n, p: ref_plan(p.shape), first_step=1_100_000, layout=_t5x_layout,
                 states=ref_states)
  _assert_close(ours, ref, flat0, "step 1.1M")
  # The statistics carry the decay of step 1.1M (mixing rate 1.1e6^-0.8 ~ 1.5e-5), unlike a
  # restart at step 0 (mixing rate 1).
  _ref_run(flat0, grads, lambda n, p: ref_plan(p.shape), first_step=0, layout=_t5x_layout, states=ref0_states)
  ours_st = {k: _flat(getattr(jax.device_get(opt_state), k)) for k in ("v_row", "v_col", "v")}
  our_plans = _flat_plans(tr.optimizer.plans(start))
  for name, want in ref_states.items():
    shape = flat0[name].shape
    plan = our_plans[name]
    got = _v_hat({k: ours_st[k][name] for k in ours_st}, (plan.averaging_dims, (plan.row_dims, plan.col_dims)
                                                          if plan.factored else None))
    want_hat = _v_hat(want, ref_plan(_t5x_layout(name, flat0[name]).shape)).reshape(shape)
    np.testing.assert_allclose(got, want_hat, rtol=1e-5, err_msg=f"second moment of {name}")
    restarted = _v_hat(ref0_states[name], ref_plan(_t5x_layout(name, flat0[name]).shape)).reshape(shape)
    assert np.max(np.abs(restarted - want_hat)) > 0.5 * np.max(np.abs(restarted)), name


def _flat_plans(plans):
  return {jax.tree_util.keystr(k, simple=True, separator="/"): v for k, v in
          jax.tree_util.tree_flatten_with_path(plans, is_leaf=lambda x: isinstance(x, optim.FactorPlan))[0]}


def _v_hat(state, plan):
  """The second-moment estimate a (possibly factored) state stands for, full size."""
  _, fd = plan
  if fd is None:
    return np.asarray(state["v"], np.float64)
  rows, cols = fd
  v_row, v_col = np.asarray(state["v_row"], np.float64), np.asarray(state["v_col"], np.float64)
  rows_left = tuple(r - sum(c < r for c in cols) for r in rows)
  mean = v_row.mean(axis=rows_left, keepdims=True)
  return np.expand_dims(v_row / mean, cols) * np.expand_dims(v_col, rows)


def test_initial_checkpoint_from_a_run_records_its_adafactor_step(tmp_path):
  """A run's checkpoint gives INITIAL_CHECKPOINT_PATH its Adafactor step (initial + updates)."""
  from flan_jax.checkpointing import checkpoints
  tx, _ = optim.make_optimizer(optim.OptimizerConfig(), 10)
  params = {"w": jnp.ones((4, 3))}
  opt_state = optim.with_initial_step(tx.init(params), 1_000_000)._replace(count=jnp.asarray(7, jnp.int32))
  run = checkpoints.RunCheckpoints(str(tmp_path), async_save=False)
  run.save(7, trainer.TrainState(step=jnp.asarray(7, jnp.int32), params=params, opt_state=opt_state), {})
  run.close()
  loaded, step = checkpoints.load_params_and_step(str(tmp_path), jax.eval_shape(lambda: params))
  assert step == 1_000_007
  np.testing.assert_array_equal(loaded["w"], np.ones((4, 3)))
  param_trees.save_params(str(tmp_path / "converted"), params)
  assert checkpoints.load_params_and_step(str(tmp_path / "converted"))[1] is None


# ----------------------------------------------------------------------------------------
# Beam search (t5x/decoding.py beam_search), re-typed: at each step the 2K best one-token
# extensions of the K live beams; every EOS among them finishes a hypothesis scored by
# log-prob / ((5 + length) / 6) ** alpha, length = prompt + generated tokens; the K best
# non-EOS extensions stay live; the K best finished are kept; at the end the best finished
# hypothesis wins, the live beams only where nothing finished.

from flan_jax.inference import decoding  # noqa: E402

TOY_V, TOY_ROWS, TOY_N = 40, 200, 8


def ref_beam_search(next_logp, states0, prompt_lens, k, n, alpha, eos=decoding.EOS_ID):
  """Rows in lockstep: `next_logp(list of (row, state))` -> per item (log-probs [V], next
  state per token). Returns per row (tokens padded to n, score)."""
  bp = lambda length: ((5.0 + length) / 6.0) ** alpha
  live = [[(0.0, [], st)] for st in states0]
  finished = [[] for _ in states0]
  for step in range(n):
    queries = [(r, st) for r, beams in enumerate(live) for _, _, st in beams]
    answers = iter(next_logp(queries))
    for r, beams in enumerate(live):
      cands = []
      for score, seq, _ in beams:
        logp, nexts = next(answers)
        cands += [(score + float(logp[v]), seq + [v], nexts[v]) for v in range(len(logp))]
      cands = sorted(cands, key=lambda c: -c[0])[:2 * k]
      finished[r] += [(sc / bp(prompt_lens[r] + step + 1), seq) for sc, seq, _ in cands if seq[-1] == eos]
      finished[r] = sorted(finished[r], key=lambda f: -f[0])[:k]
      live[r] = [c for c in cands if c[1][-1] != eos][:k]
  out = []
  for r in range(len(states0)):
    best = finished[r][0] if finished[r] else (live[r][0][0], live[r][0][1])
    out.append((best[1] + [0] * (n - len(best[1])), best[0]))
  return out


def _toy_markov(eos_bias, seed):
  """Next-token log-probs depend on the previous token and on a per-row context id."""
  rng = np.random.default_rng(seed)
  table = rng.normal(size=(4, TOY_V, TOY_V)).astype(np.float32) * 1.5
  table[..., decoding.EOS_ID] += eos_bias
  logp = np.asarray(jax.nn.log_softmax(jnp.asarray(table), axis=-1))

  def step(context, tokens_Bx1, index, cache):
    return jnp.asarray(logp)[context["ctx"], tokens_Bx1[:, 0]], cache
  return logp, step


@pytest.mark.parametrize("eos_bias", [0.0, 2.0], ids=["no_eos_bias", "eos_bias"])
def test_beam_search_equals_t5x_on_a_toy_markov_model(eos_bias):
  rng = np.random.default_rng(7)
  logp, step = _toy_markov(eos_bias, seed=3)
  ctx = rng.integers(0, 4, TOY_ROWS).astype(np.int32)
  # Encoder-decoder: prefix = start token 0. Decoder-only: [0] + a prompt of 1..5 tokens.
  prompts = [[] for _ in range(TOY_ROWS // 2)] + [
      list(rng.integers(2, TOY_V, rng.integers(1, 6))) for _ in range(TOY_ROWS // 2)]
  width = 1 + max(map(len, prompts))
  prefix = np.array([[0] + p + [0] * (width - 1 - len(p)) for p in prompts], np.int32)
  prefix_len = np.array([1 + len(p) for p in prompts], np.int32)
  fn = jax.jit(lambda c, x, l: decoding.beam_search(step, {"ctx": c}, {}, {}, x, l, num_beams=4,
                                                    max_decode_len=TOY_N, alpha=0.6))
  beams, scores = map(np.asarray, fn(ctx, prefix, prefix_len))
  finished_rows = 0
  nxt = lambda queries: [(logp[ctx[r], prev], list(range(TOY_V))) for r, prev in queries]
  ref = ref_beam_search(nxt, [([0] + p)[-1] for p in prompts], [len(p) for p in prompts], 4, TOY_N, 0.6)
  for i, (prompt, (seq, score)) in enumerate(zip(prompts, ref)):
    np.testing.assert_array_equal(beams[i, 0], seq, err_msg=f"row {i} (prompt {prompt})")
    assert abs(scores[i, 0] - score) <= 1e-5 * abs(score), i
    finished_rows += decoding.EOS_ID in seq
  # Both ways of ending occur: EOS, and max length with nothing finished.
  print(f"eos_bias {eos_bias}: {finished_rows} of {TOY_ROWS} rows end with EOS")
  assert 0 < finished_rows < TOY_ROWS


@pytest.mark.slow
def test_default_decode_is_t5x_beam_search_with_one_beam():
  """infer / eval's default DecodeConfig runs T5X's EncoderDecoderModel default: beam search,
  1 beam, alpha 0.6; greedy only when asked (`search='greedy'`)."""
  cfg = t5.T5Config(vocab_size=32, emb_dim=32, num_heads=2, head_dim=16, mlp_dim=64,
                    num_encoder_layers=1, num_decoder_layers=1)
  model = t5.Transformer(cfg)
  tok = jnp.ones((1, 1), jnp.int32)
  params = jax.device_get(__import__("flax").linen.unbox(model.init(jax.random.key(3), tok, tok)["params"]))
  kernel = np.array(params["decoder"]["logits_dense"]["kernel"])
  kernel[:, decoding.EOS_ID] *= 4.0  # EOS often among the two best candidates
  params["decoder"]["logits_dense"]["kernel"] = kernel
  n, rows = 6, 48
  inputs = np.random.default_rng(0).integers(2, 32, (rows, 7)).astype(np.int32)
  dec = decoding.SequenceDecoder(model)
  p = dec.put_params(params)
  default = dec.decode(p, inputs, decoding.DecodeConfig(max_decode_len=n)).tokens
  apply = jax.jit(lambda x, y: jax.nn.log_softmax(model.apply({"params": params}, x, y)))
  # Reference: T5X's beam search with 1 beam on the model's teacher-forced log-probs.
  def nxt(queries):
    dec_in = np.zeros((len(queries), n + 1), np.int32)
    for j, (_, prefix) in enumerate(queries):
      dec_in[j, :len(prefix)] = prefix
    lp = np.asarray(apply(inputs[[r for r, _ in queries]], dec_in))
    return [(lp[j, len(prefix) - 1], [prefix + [v] for v in range(lp.shape[-1])])
            for j, (_, prefix) in enumerate(queries)]
  ref = ref_beam_search(nxt, [[0]] * rows, [0] * rows, 1, n, 0.6)
  for i, (seq, _) in enumerate(ref):
    np.testing.assert_array_equal(default[i], seq, err_msg=f"row {i}")
  # Greedy on the same log-probs (what the default was before): it differs on some rows.
  greedy = [[0] for _ in range(rows)]
  for _ in range(n):
    for (_, prefix), (lp, _) in zip(enumerate(greedy), nxt(list(enumerate(greedy)))):
      prefix.append(0 if decoding.EOS_ID in prefix[1:] else int(np.argmax(lp)))
  greedy = np.array([g[1:] for g in greedy])
  differ = int((default != greedy).any(axis=1).sum())
  print(f"default decode differs from greedy on {differ} of {rows} rows")
  assert differ > 0, "the model should make beam(1) and greedy differ"


# ----------------------------------------------------------------------------------------
# Layers: dropout sites, initialisers, float32 logits (t5x/examples/t5); label smoothing
# (t5x/losses.py).


def test_label_smoothing_as_t5x_losses():
  from flan_jax.core import losses
  rng = np.random.default_rng(0)
  v, ls = 11, 0.1
  logits = rng.normal(size=(2, 3, v)).astype(np.float32) * 3
  targets = rng.integers(0, v, (2, 3))
  weights = np.ones((2, 3), np.float32)
  conf, low = 1 - ls, ls / (v - 1)
  soft = np.full((2, 3, v), low)
  np.put_along_axis(soft, targets[..., None], conf, axis=-1)
  logp = logits - np.log(np.exp(logits.astype(np.float64)).sum(-1, keepdims=True))
  const = -(conf * np.log(conf) + (v - 1) * low * np.log(low + 1e-20))
  want = np.sum(-(soft * logp).sum(-1) - const)
  got, _ = losses.cross_entropy_with_z_loss(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights),
                                            z_loss=0.0, label_smoothing=ls)
  np.testing.assert_allclose(float(got), want, rtol=1e-5)
  # A model that puts exactly the soft targets' probabilities scores 0.
  perfect, _ = losses.cross_entropy_with_z_loss(jnp.log(jnp.asarray(soft, jnp.float32)), jnp.asarray(targets),
                                                jnp.asarray(weights), z_loss=0.0, label_smoothing=ls)
  assert abs(float(perfect)) < 1e-4


@pytest.mark.slow
def test_dropout_sites_init_and_float32_logits():
  import flax.linen as nn
  cfg = t5.T5Config(vocab_size=64, emb_dim=32, num_heads=4, head_dim=8, mlp_dim=512, num_encoder_layers=1,
                    num_decoder_layers=1, dropout_rate=0.5, dtype="bfloat16")
  model = t5.Transformer(cfg)
  enc = jnp.asarray(np.random.default_rng(0).integers(2, 64, (2, 16)), jnp.int32)
  dec = jnp.asarray(np.random.default_rng(1).integers(2, 64, (2, 8)), jnp.int32)
  params = nn.unbox(jax.jit(model.init)(jax.random.key(0), enc, dec)["params"])
  capture = lambda m, _: isinstance(m, (nn.Dropout, t5.layers.DenseGeneral))
  _, inter = jax.jit(lambda p: model.apply({"params": p}, enc, dec, deterministic=False,
                                           rngs={"dropout": jax.random.key(1)}, capture_intermediates=capture))(params)
  flat = {jax.tree_util.keystr(k, simple=True, separator="/"): v
          for k, v in jax.tree_util.tree_flatten_with_path(inter["intermediates"])[0]}
  # Attention weights [B, H, L, S]: one keep-mask per key, shared by every query.
  attn = np.asarray(flat["encoder/layers_0/attention/Dropout_0/__call__/0"], np.float32)
  dropped = attn == 0
  assert dropped.any() and (dropped == dropped[:, :, :1, :]).all()
  # The encoder's final dropout is elementwise: masks differ along the length.
  final = np.asarray(flat["encoder/Dropout_1/__call__/0"], np.float32) == 0
  assert final.any() and (final != final[:, :1, :]).any()
  # Output projection in float32 even in a bfloat16 model.
  assert flat["decoder/logits_dense/__call__/0"].dtype == jnp.float32
  # Relative-position table: variance scaling, fan_avg, uniform.
  rel = np.asarray(params["encoder"]["relpos_bias"]["rel_embedding"])
  limit = np.sqrt(6.0 / sum(rel.shape))
  assert np.abs(rel).max() <= limit and abs(rel.std() / (limit / np.sqrt(3)) - 1) < 0.15
  # MLP kernels: truncated normal (|w| <= 2 sigma') with std fan_in^-0.5.
  wi = np.asarray(params["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"])
  wo = np.asarray(params["encoder"]["layers_0"]["mlp"]["wo"]["kernel"])
  for w, fan_in in ((wi, 32), (wo, 512)):
    assert np.abs(w).max() <= 2 * fan_in ** -0.5 / 0.8796 + 1e-6
    assert abs(w.std() * fan_in ** 0.5 - 1) < 0.05


def _t5x_attention_bf16(params, x, bias, dtype=jnp.bfloat16):
  """T5X's MultiHeadDotProductAttention + dot_product_attention with float32_logits=False
  (t5x/examples/t5/layers.py, the T5 v1.1 default), re-typed: projections in `dtype`, the
  q.k logits in `dtype`, the bias cast to the logits' dtype, softmax in that dtype."""
  p = jax.tree.map(lambda w: jnp.asarray(w, dtype), params)
  xb = x.astype(dtype)
  q = jnp.einsum("bld,dhk->blhk", xb, p["query"]["kernel"])
  k = jnp.einsum("bld,dhk->blhk", xb, p["key"]["kernel"])
  v = jnp.einsum("bld,dhk->blhk", xb, p["value"]["kernel"])
  logits = jnp.einsum("bqhd,bkhd->bhqk", q, k)
  logits = logits + bias.astype(logits.dtype)
  weights = jax.nn.softmax(logits).astype(dtype)
  out = jnp.einsum("bhqk,bkhd->bqhd", weights, v)
  return jnp.einsum("blhk,hkd->bld", out, p["out"]["kernel"]), logits.dtype


@pytest.mark.slow
def test_bfloat16_attention_keeps_logits_in_bfloat16_as_t5x():
  """Flan-T5 (T5X's T5 v1.1 gin: float32_attention_logits unset, False) computes attention
  logits, bias and softmax in bfloat16; flan_jax's T5 does the same by default, and
  `float32_attention_logits=True` upcasts after the dot (a different program)."""
  import flax.linen as nn
  from flan_jax.models import layers
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 24, 64)), jnp.float32)
  bias = jnp.asarray(rng.normal(size=(1, 4, 24, 24)) * 3, jnp.float32)
  attn = layers.Attention(4, 16, dtype=jnp.bfloat16, float32_logits=False)
  params = nn.unbox(attn.init(jax.random.key(0), x, x, bias, deterministic=True)["params"])
  ours = attn.apply({"params": params}, x, x, bias, deterministic=True)
  want, logit_dtype = _t5x_attention_bf16(params, x, bias)
  assert logit_dtype == jnp.bfloat16 and ours.dtype == jnp.bfloat16
  err = float(jnp.max(jnp.abs(ours.astype(jnp.float32) - want.astype(jnp.float32))))
  upcast = layers.Attention(4, 16, dtype=jnp.bfloat16, float32_logits=True).apply(
      {"params": params}, x, x, bias, deterministic=True)
  err_upcast = float(jnp.max(jnp.abs(upcast.astype(jnp.float32) - want.astype(jnp.float32))))
  assert err <= 1e-6 < err_upcast, (err, err_upcast)
  assert t5.T5Config().float32_attention_logits is False
