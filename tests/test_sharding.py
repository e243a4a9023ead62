"""Sharded equals unsharded: one step's loss and gradients on 8 virtual CPU devices."""
import jax
import numpy as np
import pytest

from flan_jax.core import partitioning
from flan_jax.training import trainer
from tests.helpers import make_trainer, random_encdec_batch, tree_max_rel_diff

MESHES = {
    "8xdata": (partitioning.MeshConfig(), (8, 1, 1)),
    "4xdata_2xmodel": (partitioning.MeshConfig(model_parallel=2), (4, 1, 2)),
    "2xdata_4xfsdp": (partitioning.MeshConfig(fsdp=True, fsdp_size=4), (2, 4, 1)),
}


@pytest.fixture(scope="module")
def reference():
  batch = random_encdec_batch(packed=True)
  tr = make_trainer(num_devices=1, batch=batch)
  state = tr.init_state(0)
  loss, grads = tr.loss_and_grads(state.params, trainer.global_batch(batch, tr.batch_shardings))
  new_state, metrics = tr.step(state, trainer.global_batch(batch, tr.batch_shardings))
  return batch, float(loss), jax.device_get(grads), jax.device_get(new_state.params), jax.device_get(metrics)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MESHES))
def test_sharded_step_matches_single_device(reference, name):
  assert jax.device_count() == 8, "tests/conftest.py sets 8 virtual CPU devices"
  batch, ref_loss, ref_grads, ref_params, ref_metrics = reference
  mesh_config, shape = MESHES[name]
  tr = make_trainer(mesh_config, batch=batch)
  assert tuple(tr.mesh.shape.values()) == shape
  state = tr.init_state(0)
  gbatch = trainer.global_batch(batch, tr.batch_shardings)
  loss, grads = tr.loss_and_grads(state.params, gbatch)
  assert abs(float(loss) - ref_loss) / ref_loss < 1e-5
  assert tree_max_rel_diff(jax.device_get(grads), ref_grads) < 1e-5
  new_state, metrics = tr.step(state, gbatch)
  assert tree_max_rel_diff(jax.device_get(new_state.params), ref_params) < 1e-5
  np.testing.assert_allclose(float(metrics["loss"]), float(ref_metrics["loss"]), rtol=1e-5)
  # Parameters really are split: some kernel is sharded over more than one device.
  specs = [l.sharding.spec for l in jax.tree.leaves(new_state.params)]
  if name != "8xdata":
    assert any(any(axis is not None for axis in spec) for spec in specs)
    kernel = new_state.params["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"]
    assert len({str(s.index) for s in kernel.addressable_shards}) > 1


def _two_slices(device):
  """Pretend the 8 CPU devices are 2 TPU slices of 4 (TPU devices carry slice_index)."""
  return device.id // 4


@pytest.mark.slow
@pytest.mark.parametrize("mesh_config,shape", [
    (partitioning.MeshConfig(num_slices=2, fsdp=True), (2, 4, 1)),
    (partitioning.MeshConfig(num_slices=2, model_parallel=2), (4, 1, 2)),
])
def test_multislice_hybrid_mesh_keeps_fsdp_and_model_inside_a_slice(reference, mesh_config,
                                                                    shape):
  mesh = partitioning.make_mesh(mesh_config, slice_of=_two_slices)
  assert tuple(mesh.shape.values()) == shape
  assert mesh_config.mesh_shape(8) == shape
  devices = mesh.devices
  for i in range(shape[0]):  # every (fsdp, model) block lies in one slice
    assert len({_two_slices(d) for d in devices[i].flat}) == 1
  assert {_two_slices(d) for d in devices[:, 0, 0]} == {0, 1}  # data crosses the slices
  # ... and the step is still the single-device step.
  batch, ref_loss, ref_grads, _, _ = reference
  tr = make_trainer(mesh_config, batch=batch, slice_of=_two_slices)
  state = tr.init_state(0)
  loss, grads = tr.loss_and_grads(state.params, trainer.global_batch(batch, tr.batch_shardings))
  assert abs(float(loss) - ref_loss) / ref_loss < 1e-5
  assert tree_max_rel_diff(jax.device_get(grads), ref_grads) < 1e-5


def test_multislice_mesh_refuses_a_wrong_slice_count():
  with pytest.raises(ValueError, match=r"num_slices=4, but the devices form 2 slice\(s\)"):
    partitioning.make_mesh(partitioning.MeshConfig(num_slices=4), slice_of=_two_slices)


def test_indivisible_mesh_names_parameter_and_axis():
  cfg_heads3 = __import__("flan_jax.models.t5", fromlist=["T5Config"]).T5Config(
      vocab_size=256, emb_dim=64, num_heads=3, head_dim=16, mlp_dim=128, num_encoder_layers=1, num_decoder_layers=1)
  with pytest.raises(ValueError, match=r"mesh axis model=2 does not divide dimension 3 of .*attention"):
    make_trainer(partitioning.MeshConfig(model_parallel=2), config=cfg_heads3)


def test_mesh_config_errors_name_the_setting():
  with pytest.raises(ValueError, match="model parallel size 3 does not divide the 8 devices"):
    partitioning.make_mesh(partitioning.MeshConfig(model_parallel=3))
  assert partitioning.MeshConfig(num_partitions=4, fsdp=True).axis_sizes(8) == (1, 2, 4)


@pytest.mark.slow
def test_the_residual_stream_is_sharded_over_the_model_axis(reference):
  """`ModelConfig.shard_residual` (the default): the layers' outputs carry a sharding over
  ('data', 'fsdp') x 'model'; turned off, over the batch only. The step is the same."""
  import dataclasses
  from tests.helpers import TINY_T5
  from jax.sharding import PartitionSpec as P
  assert partitioning.logical_to_mesh_spec(("batch", "length", "residual_embed")) == P(("data", "fsdp"), None, "model")
  batch, ref_loss, ref_grads, _, _ = reference
  texts = {}
  for on in (True, False):
    tr = make_trainer(partitioning.MeshConfig(model_parallel=2), batch=batch,
                      config=dataclasses.replace(TINY_T5, shard_residual=on))
    state = tr.init_state(0)
    gbatch = trainer.global_batch(batch, tr.batch_shardings)
    loss, grads = tr.loss_and_grads(state.params, gbatch)
    assert abs(float(loss) - ref_loss) / ref_loss < 1e-5
    assert tree_max_rel_diff(jax.device_get(grads), ref_grads) < 1e-5
    texts[on] = tr.lower_loss_and_grads(state.params, gbatch).as_text()
  # [batch over data and fsdp, length, embed over model] on the residual, only when on.
  tiled = '[{"data", "fsdp"}, {}, {"model"}]'

  assert texts[True].count(tiled) > texts[False].count(tiled)
