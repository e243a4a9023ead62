"""T5 with `scan_layers=True` (T5X scalable_t5's layout): the same model as unrolled layers.

The paper's Flan-T5 recipes scan their stacks (compile time flat in depth), so
a scanned T5 must compute, train, decode, convert and load checkpoints exactly as the
unrolled one whose parameter names HF and T5X checkpoints use.
"""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from flan_jax.checkpointing import param_trees
from flan_jax.checkpointing import checkpoints
from flan_jax.inference import decoding
from flan_jax.core import partitioning
from flan_jax.models import stack_layers, t5, unstack_layers
from tests.helpers import TINY_T5, make_trainer, random_encdec_batch, tree_max_rel_diff

# Three decoder layers, two encoder layers: a mix-up of the two stacks would show.
UNROLLED = dataclasses.replace(TINY_T5, num_decoder_layers=3, dropout_rate=0.0)
SCANNED = dataclasses.replace(UNROLLED, scan_layers=True)


def _params(cfg, seed=0):
  x = jnp.ones((1, 4), jnp.int32)
  return jax.device_get(nn.unbox(jax.jit(t5.Transformer(cfg).init)(jax.random.key(seed), x, x)["params"]))


@pytest.mark.slow
def test_scanned_forward_and_gradients_equal_unrolled():
  params = _params(UNROLLED)
  stacked = stack_layers(params)
  boxed = jax.eval_shape(lambda: t5.Transformer(SCANNED).init(jax.random.key(0), jnp.ones((1, 4), jnp.int32),
                                                              jnp.ones((1, 4), jnp.int32)))["params"]
  assert jax.tree.map(jnp.shape, stacked) == jax.tree.map(jnp.shape, nn.unbox(boxed))
  specs = nn.get_partition_spec(boxed)
  assert specs["encoder"]["layers"]["mlp"]["wi_0"]["kernel"] == P("layers", "embed", "mlp")
  assert specs["decoder"]["layers"]["encoder_decoder_attention"]["query"]["kernel"] == P(
      "layers", "embed", "heads", "kv")
  assert stacked["decoder"]["layers"]["mlp"]["wo"]["kernel"].shape[0] == 3

  batch = random_encdec_batch(batch_size=4, packed=True, seed=3)

  def loss(cfg, p):
    logits = t5.Transformer(cfg).apply({"params": p}, batch["encoder_input_tokens"], batch["decoder_input_tokens"],
                                       batch["encoder_segment_ids"], batch["decoder_segment_ids"])
    logp = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(logp, batch["decoder_target_tokens"][..., None], -1)[..., 0]
    return jnp.sum(nll * batch["decoder_loss_weights"])

  la, ga = jax.value_and_grad(lambda p: loss(UNROLLED, p))(params)
  lb, gb = jax.value_and_grad(lambda p: loss(SCANNED, p))(stacked)
  np.testing.assert_allclose(lb, la, rtol=1e-6)
  assert tree_max_rel_diff(unstack_layers(jax.device_get(gb)), jax.device_get(ga)) < 1e-5


@pytest.mark.slow
def test_a_scanned_train_step_equals_the_unrolled_one():
  """Adafactor on the stacked layout: the `layers` axis is a batch of independent matrices
  (factored statistics and update clipping per layer), so one step moves every parameter
  exactly as it moves the unrolled model's. Dimensions >= 128 (as every real T5): T5X factors a
  2-D kernel by the size heuristic (second largest dim >= 128) but a stacked one by its rule, so
  below 128 the two layouts would differ in T5X too."""
  batch = random_encdec_batch(seed=5)
  unrolled = dataclasses.replace(UNROLLED, emb_dim=128, mlp_dim=256)
  scanned = dataclasses.replace(unrolled, scan_layers=True)
  ta, tb = make_trainer(config=unrolled, batch=batch), make_trainer(config=scanned, batch=batch)
  sa = ta.init_state(0)
  sb = tb.init_state(0)
  sb = sb.replace(params=jax.device_put(stack_layers(jax.device_get(sa.params)), tb.state_shardings.params))
  sa, ma = ta.train_step(sa, jax.device_put(batch, ta.batch_shardings))
  sb, mb = tb.train_step(sb, jax.device_put(batch, tb.batch_shardings))
  np.testing.assert_allclose(float(mb["loss"]), float(ma["loss"]), rtol=1e-6)
  assert tree_max_rel_diff(unstack_layers(jax.device_get(sb.params)), jax.device_get(sa.params)) < 1e-6


@pytest.mark.slow
def test_scanned_cached_decoding_equals_unrolled():
  params = _params(UNROLLED, seed=1)
  rng = np.random.default_rng(0)
  inputs = rng.integers(2, 256, (3, 9)).astype(np.int32)
  inputs[1, 5:] = 0
  cfg = decoding.DecodeConfig(max_decode_len=6, num_beams=2)
  outs = []
  for model_cfg, p in ((UNROLLED, params), (SCANNED, stack_layers(params))):
    dec = decoding.SequenceDecoder(t5.Transformer(model_cfg))
    outs.append(dec.decode(dec.put_params(p), inputs, cfg))
  np.testing.assert_array_equal(outs[1].tokens, outs[0].tokens)
  np.testing.assert_allclose(outs[1].scores, outs[0].scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("saved_cfg,load_cfg", [(UNROLLED, SCANNED), (SCANNED, UNROLLED)],
                         ids=["unrolled->scanned", "scanned->unrolled"])
def test_a_checkpoint_loads_into_the_other_layout_on_its_shardings(tmp_path, saved_cfg, load_cfg):
  """A converted Flan-T5 (unrolled, HF's block numbering) fine-tunes under a scanned recipe."""
  params = _params(UNROLLED, seed=2)
  saved = stack_layers(params) if saved_cfg.scan_layers else params
  param_trees.save_params(str(tmp_path / "ckpt"), saved)
  tr = make_trainer(partitioning.MeshConfig(model_parallel=2), config=load_cfg)
  abstract = tr.abstract_state.params
  checkpoints.check_params_structure(str(tmp_path / "ckpt"), abstract)
  loaded = checkpoints.load_params(str(tmp_path / "ckpt"), abstract)
  want = stack_layers(params) if load_cfg.scan_layers else params
  assert jax.tree.structure(loaded) == jax.tree.structure(want)
  for got, w, target in zip(jax.tree.leaves(loaded), jax.tree.leaves(want), jax.tree.leaves(abstract)):
    assert got.sharding == target.sharding
    np.testing.assert_array_equal(np.asarray(got), w)


def test_a_different_model_is_still_refused_across_layouts(tmp_path):
  params = _params(dataclasses.replace(UNROLLED, num_decoder_layers=2))
  param_trees.save_params(str(tmp_path / "ckpt"), params)
  tr = make_trainer(config=SCANNED)
  with pytest.raises(checkpoints.CheckpointError, match="decoder/layers_2"):
    checkpoints.check_params_structure(str(tmp_path / "ckpt"), tr.abstract_state.params)
  with pytest.raises(checkpoints.CheckpointError, match="layer layout"):
    checkpoints.load_params(str(tmp_path / "ckpt"), tr.abstract_state.params)


def test_hf_conversion_of_a_scanned_model_round_trips(tmp_path):
  from flan_jax.checkpointing import hf
  params = _params(UNROLLED, seed=4)
  state_dict = hf.params_to_hf(stack_layers(params), SCANNED)
  assert state_dict.keys() == hf.params_to_hf(params, UNROLLED).keys()
  assert "decoder.block.2.layer.2.DenseReluDense.wo.weight" in state_dict
  back = hf.params_from_hf(state_dict, SCANNED)
  assert jax.tree.structure(back) == jax.tree.structure(stack_layers(params))
  for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(stack_layers(params))):
    np.testing.assert_array_equal(a, b)


def test_every_paper_flan_t5_recipe_scans_its_layers():
  from flan_jax.planning import plan
  for size in ("small", "base", "large", "xl", "xxl"):
    recipe = plan.recipe_from_gin([f"recipes/flan_t5_{size}.gin"])
    assert recipe.model_config.scan_layers, size


@pytest.mark.slow
def test_a_run_checkpoint_loads_into_the_other_layout_with_its_adafactor_step(tmp_path):
  """INITIAL_CHECKPOINT_PATH = an unscanned run's MODEL_DIR: parameters stacked, the
  optimizer step it recorded kept (Adafactor continues from it)."""
  batch = random_encdec_batch(seed=6)
  tr = make_trainer(config=UNROLLED, batch=batch)
  state = tr.init_state(0)
  state, _ = tr.train_step(state, jax.device_put(batch, tr.batch_shardings))
  ckpts = checkpoints.RunCheckpoints(str(tmp_path / "run"), async_save=False)
  ckpts.save(1, state, {"position": 1})
  ckpts.close()
  scanned = make_trainer(config=SCANNED, batch=batch)
  params, step = checkpoints.load_params_and_step(str(tmp_path / "run"), scanned.abstract_state.params)
  assert step == 1
  want = stack_layers(jax.device_get(state.params))
  for got, w in zip(jax.tree.leaves(params), jax.tree.leaves(want)):
    np.testing.assert_array_equal(np.asarray(got), w)
