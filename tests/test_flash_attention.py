"""The Pallas flash-attention kernels against XLA attention: the kernels interpreted on CPU
(forward and gradients, position bias, packing, padding, causal multi-query, dropout,
sharded under a mesh), their cost estimates, and, where libtpu is installed, the same
kernels compiled by XLA:TPU and priced by `planning.hlo`."""
import dataclasses
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.core import partitioning
from flan_jax.models import flash_attention as fa
from flan_jax.models import layers, palm, t5
from flan_jax.planning import hlo
from flan_jax.training import trainer
from tests.helpers import TINY_T5, make_trainer, random_encdec_batch, tree_max_rel_diff


def _inputs(b, h, g, l, s, k, dtype, seed=0, bias=True, segments=True):
  ks = jax.random.split(jax.random.key(seed), 4)
  q = jax.random.normal(ks[0], (b, h, l, k), dtype)
  kk = jax.random.normal(ks[1], (b, g, s, k), dtype)
  v = jax.random.normal(ks[2], (b, g, s, k), dtype)
  bi = jax.random.normal(ks[3], (h, l, s), jnp.float32) if bias else None
  qs = ks_ = None
  if segments:  # two packed examples, then padding; row 1 packs differently
    qs = np.zeros((b, l), np.int32)
    qs[:, : l // 3], qs[:, l // 3: l - 8] = 1, 2
    qs[1, : l // 2], qs[1, l // 2: l - 3] = 1, 2
    ks_ = qs.copy() if s == l else np.where(np.arange(s) < s // 2, 1, 2)[None].repeat(b, 0).astype(np.int32)
    qs, ks_ = jnp.asarray(qs), jnp.asarray(ks_)
  return q, kk, v, bi, qs, ks_


CASES = {
    # T5 encoder: bias per head, packing, padding; several query and key blocks.
    "t5_encoder": dict(b=2, h=4, g=4, l=256, s=256, k=32, causal=False, bias=True),
    # T5 decoder self-attention: causal with bias; blocks skipped above the diagonal.
    "t5_decoder_causal": dict(b=2, h=2, g=2, l=256, s=256, k=32, causal=True, bias=True),
    # T5 cross-attention: other key length, no bias.
    "t5_cross": dict(b=2, h=2, g=2, l=128, s=256, k=32, causal=False, bias=False),
    # PaLM: causal multi-query (one key/value head for all query heads).
    "palm_mqa": dict(b=2, h=4, g=1, l=256, s=256, k=64, causal=True, bias=False),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_kernels_equal_xla_attention_forward_and_gradients(name, dtype):
  _check_kernels(CASES[name], dtype, dict(block_q=64, block_k=128, block_k_dkv=64))


def test_kernels_equal_xla_attention_at_a_small_size():
  """The fast tier's check: causal multi-query with bias and packing, several blocks per axis."""
  c = dict(b=2, h=2, g=1, l=64, s=64, k=16, causal=True, bias=True)
  _check_kernels(c, jnp.float32, dict(block_q=32, block_k=32, block_k_dkv=32))


def _check_kernels(c, dtype, blocks):
  q, k, v, bias, qs, ks = _inputs(c["b"], c["h"], c["g"], c["l"], c["s"], c["k"], dtype, bias=c["bias"])
  flash = lambda q, k, v, bias: fa.flash_attention(q, k, v, bias, qs, ks, causal=c["causal"], interpret=True,
                                                   **blocks)
  ref = lambda q, k, v, bias: fa.reference_attention(q, k, v, bias, qs, ks, causal=c["causal"])
  real = (qs > 0)[:, None, :, None]  # padding queries average every key: no output to compare
  out_f, out_r = flash(q, k, v, bias), ref(q, k, v, bias)
  tol = 1e-5 if dtype == jnp.float32 else 2e-2
  scale = float(jnp.max(jnp.abs(out_r.astype(jnp.float32))))
  err = float(jnp.max(jnp.where(real, jnp.abs(out_f.astype(jnp.float32) - out_r.astype(jnp.float32)), 0)))
  assert err <= tol * scale, (err, scale)
  w = jax.random.normal(jax.random.key(9), out_r.shape, jnp.float32) * real
  argnums = (0, 1, 2, 3) if c["bias"] else (0, 1, 2)
  grad = lambda fn: jax.grad(lambda *a: jnp.sum(fn(*a).astype(jnp.float32) * w), argnums=argnums)(q, k, v, bias)
  for label, gf, gr in zip("q k v bias".split(), grad(flash), grad(ref)):
    gf, gr = np.asarray(gf, np.float32), np.asarray(gr, np.float32)
    rel = np.max(np.abs(gf - gr)) / np.max(np.abs(gr))
    assert rel <= (1e-5 if dtype == jnp.float32 else 3e-2), (label, rel)


def test_causal_kernels_skip_the_blocks_above_the_diagonal():
  spec = fa._Spec(batch=1, heads=1, kv_heads=1, q_len=2048, kv_len=2048, head_dim=64, block_q=128, block_k=512,
                  block_k_dkv=256, causal=True, has_bias=False, has_segments=False, interpret=True)
  # 16 query blocks reach 1, 1, 1, 1, 2, ... 4 key blocks of 512: 40 of 64 pairs.
  assert fa._visited_fraction(spec) == pytest.approx(40 / 64)
  cost = fa._cost(spec, 2, 1, 0)
  pairs = 2048 * 2048 * 40 / 64
  assert cost.flops == int(2 * 2 * pairs * 64 + 8 * pairs)
  assert cost.transcendentals == int(pairs)


def test_bad_shapes_are_named():
  q, k, v, bias, qs, ks = _inputs(2, 4, 4, 16, 16, 8, jnp.float32)
  with pytest.raises(ValueError, match="bias"):
    fa.flash_attention(q, k, v, bias[:, :8], qs, ks, interpret=True)
  with pytest.raises(ValueError, match="segment ids"):
    fa.flash_attention(q, k, v, bias, qs, None, interpret=True)
  with pytest.raises(ValueError, match="key/value heads"):
    fa.flash_attention(q, k[:, :3], v[:, :3], bias, qs, ks, interpret=True)
  with pytest.raises(ValueError, match="attention_kernel"):
    t5.T5Config(attention_kernel="cudnn")
  # Lengths whose rows do not fit on chip are refused before anything compiles, naming the way out.
  long = jax.ShapeDtypeStruct((1, 8, 16384, 64), jnp.bfloat16)
  with pytest.raises(ValueError, match=r"16384 x 16384 .* MiB of VMEM .* attention_kernel='xla'"):
    jax.eval_shape(lambda q: fa.flash_attention(q, q, q), long)


def _t5_batch():
  b, s, l = 2, 32, 16
  enc = np.random.RandomState(0).randint(1, 64, (b, s)).astype(np.int32)
  enc[1, 20:] = 0
  seg = np.where(np.arange(s) < 10, 1, 2)[None].repeat(b, 0).astype(np.int32) * (enc > 0)
  dec = np.random.RandomState(1).randint(1, 64, (b, l)).astype(np.int32)
  dseg = np.where(np.arange(l) < 6, 1, 2)[None].repeat(b, 0).astype(np.int32)
  return dict(encoder_input_tokens=enc, decoder_input_tokens=dec, decoder_target_tokens=dec,
              encoder_segment_ids=seg, decoder_segment_ids=dseg)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["t5", "palm"])
@pytest.mark.parametrize("dropout", [False, True])
def test_models_with_flash_equal_xla_attention(family, dropout):
  """Same parameters, same loss and gradients (relative-position tables included), with
  packing, padding and, with dropout on, the same dropout masks."""
  batch = _t5_batch()
  if family == "t5":
    cfg = t5.T5Config(vocab_size=64, emb_dim=32, num_heads=4, head_dim=8, mlp_dim=64, num_encoder_layers=2,
                      num_decoder_layers=2, dropout_rate=0.1)
    build, inputs = t5.Transformer, batch
  else:
    cfg = palm.PaLMConfig(vocab_size=64, emb_dim=32, num_heads=4, head_dim=8, mlp_dim=64, num_layers=2,
                          dropout_rate=0.1)
    build = palm.DecoderOnlyLM
    inputs = dict(decoder_input_tokens=batch["decoder_input_tokens"], decoder_segment_ids=batch["decoder_segment_ids"])
  rngs = {"dropout": jax.random.key(3)} if dropout else None
  xla, flash = (build(dataclasses.replace(cfg, attention_kernel=a)) for a in ("xla", "flash"))
  params = xla.init(jax.random.key(0), **inputs)["params"]

  def loss(model):
    return lambda p: jnp.mean(model.apply({"params": p}, **inputs, deterministic=not dropout, rngs=rngs) ** 2)

  lx, gx = jax.value_and_grad(loss(xla))(params)
  lf, gf = jax.value_and_grad(loss(flash))(params)
  assert abs(float(lf) - float(lx)) <= 1e-5 * abs(float(lx))
  assert tree_max_rel_diff(gf, gx) < 1e-5


def test_auto_is_xla_off_tpu():
  """(On a TPU mesh 'auto' is the kernels: test_plan_compile.py::test_tiny_models_compile_for_tpu
  finds them in the compiled program.)"""
  assert layers.flash_platform("auto") is None  # CPU here
  assert layers.flash_platform("flash") == "cpu"
  assert layers.flash_platform("xla") is None
  assert fa.MASK_VALUE == layers.MASK_BIAS  # masked logits as the XLA path's additive mask


@pytest.mark.slow
def test_sharded_flash_step_matches_single_device_xla(monkeypatch):
  """On a 4 x data, 2 x model mesh the kernels run inside shard_map on each device's batch
  rows and heads; loss and gradients equal one device's XLA attention."""
  meshes = []
  real = layers.flash_attention

  def spy(*args):
    meshes.append(dict(jax.sharding.get_abstract_mesh().shape))
    return real(*args)

  monkeypatch.setattr(layers, "flash_attention", spy)
  assert jax.device_count() == 8, "tests/conftest.py sets 8 virtual CPU devices"
  batch = random_encdec_batch(packed=True)
  ref = make_trainer(num_devices=1, batch=batch, config=dataclasses.replace(TINY_T5, attention_kernel="xla"))
  state = ref.init_state(0)
  ref_loss, ref_grads = ref.loss_and_grads(state.params, trainer.global_batch(batch, ref.batch_shardings))
  tr = make_trainer(partitioning.MeshConfig(model_parallel=2), batch=batch,
                    config=dataclasses.replace(TINY_T5, attention_kernel="flash"))
  state = tr.init_state(0)
  gbatch = trainer.global_batch(batch, tr.batch_shardings)
  loss, grads = tr.loss_and_grads(state.params, gbatch)
  assert {"data": 4, "fsdp": 1, "model": 2} in meshes  # every attention block, under the mesh
  assert abs(float(loss) - float(ref_loss)) / float(ref_loss) < 1e-5
  assert tree_max_rel_diff(jax.device_get(grads), jax.device_get(ref_grads)) < 1e-5


# A tpu_custom_call as XLA:TPU prints it (operands abridged): the kernel's cost estimate
# rides in its backend config.
_KERNEL_HLO = """HloModule m, entry_computation_layout={(bf16[8,8,2048,64]{3,2,1,0})->bf16[8,8,2048,64]{3,2,1,0}}

ENTRY %main (q: bf16[8,8,2048,64]) -> bf16[8,8,2048,64] {
  %q = bf16[8,8,2048,64]{3,2,1,0} parameter(0)
  ROOT %fwd = bf16[8,8,2048,64]{3,2,1,0} custom-call(bf16[8,8,2048,64]{3,2,1,0} %q), custom_call_target="tpu_custom_call", backend_config={"custom_call_config": {"body": "TUzvUgFNTElSMjAu", "cost_estimate":{"flops":"70866960384","transcendentals":"268435456","bytes_accessed":"905969664","remote_bytes_transferred":"0"}}}, metadata={op_name="jit(loss)/flash_attention_fwd"}
}
"""


def test_hlo_counter_prices_a_kernel_by_its_cost_estimate():
  stats = hlo.analyse(_KERNEL_HLO, 1)
  assert stats.flops == 70866960384
  assert stats.bytes_accessed == 905969664
  assert stats.kernels == 1


@pytest.mark.skipif(importlib.util.find_spec("libtpu") is None, reason="needs libtpu (the tpu extra)")
def test_kernels_compile_for_tpu_and_are_priced():
  """XLA:TPU (libtpu, no TPU) compiles the forward and both backward kernels for a Flan-T5
  encoder's attention; XLA's cost analysis and the HLO counter both read the estimates."""
  from flan_jax.planning import topology, tpu
  sl = topology.parse_compilable("v4-8")
  device = tpu.topology_devices(sl)[0]
  sharding = jax.sharding.SingleDeviceSharding(device)
  arg = lambda shape, dtype=jnp.bfloat16: jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)
  b, h, l, k = 2, 4, 2048, 64
  args = (arg((b, h, l, k)), arg((b, h, l, k)), arg((b, h, l, k)), arg((h, l, l), jnp.float32),
          arg((b, l), jnp.int32), arg((b, l), jnp.int32))

  def loss(q, kk, v, bias, qs, ks):
    return jnp.sum(fa.flash_attention(q, kk, v, bias, qs, ks).astype(jnp.float32))

  with tpu.libtpu_environment(sl.name):
    compiled = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3))).lower(*args).compile()
  text = compiled.as_text()
  assert text.count('custom_call_target="tpu_custom_call"') == 3
  pairs = b * h * l * l
  kernel_flops = 2 * (2 + 3 + 4) * pairs * k + 3 * 8 * pairs
  stats = hlo.analyse(text, 1)
  assert stats.kernels == 3
  assert kernel_flops <= stats.flops <= 1.05 * kernel_flops
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  assert kernel_flops <= cost["flops"] <= 1.05 * kernel_flops
  # No [B, H, L, L] buffer: the largest temporary is far below one score matrix in float32.
  assert compiled.memory_analysis().temp_size_in_bytes < b * h * l * l * 4 / 2


def test_off_tpu_the_default_train_step_is_the_xla_attention_program():
  """'auto' on CPU lowers to exactly the XLA-attention program: the quickstart's numbers do
  not move. The planner, too, counts XLA attention for GPU slices and the kernels for TPU."""
  from flan_jax.planning import plan
  batch = random_encdec_batch()
  auto = make_trainer(num_devices=1, batch=batch, config=dataclasses.replace(TINY_T5, attention_kernel="auto"))
  xla = make_trainer(num_devices=1, batch=batch, config=dataclasses.replace(TINY_T5, attention_kernel="xla"))
  assert auto.lower_train_step().as_text() == xla.lower_train_step().as_text()
  files = ["gin/recipes/flan_t5_base.gin"]
  on_gpu = {k: plan.Planner(plan.recipe_from_gin(files, [f"T5Config.attention_kernel = '{k}'"])).plan(
      plan.parse_topology("h100x8")).activations for k in ("auto", "xla")}
  on_tpu = {k: plan.Planner(plan.recipe_from_gin(files, [f"T5Config.attention_kernel = '{k}'"])).plan(
      plan.parse_topology("v4-16")).activations for k in ("auto", "xla")}
  assert on_gpu["auto"] == on_gpu["xla"] and on_tpu["auto"] < on_tpu["xla"]
