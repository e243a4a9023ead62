"""Checkpoints: restore onto another mesh, parameter-only loads, nothing half-written."""
import os

import jax
import numpy as np
import pytest

from flan_jax.checkpointing import param_trees
from flan_jax.checkpointing import checkpoints
from flan_jax.core import partitioning
from flan_jax.training import trainer
from tests.helpers import make_trainer, random_encdec_batch, tree_max_rel_diff


def _trained_state(tr, batch, steps=2):
  state = tr.init_state(0)
  gb = trainer.global_batch(batch, tr.batch_shardings)
  for _ in range(steps):
    state, _ = tr.step(state, gb)
  return state


@pytest.mark.slow
def test_state_saved_on_one_mesh_restores_on_another(tmp_path):
  batch = random_encdec_batch()
  tr1 = make_trainer(num_devices=1, batch=batch)
  state = _trained_state(tr1, batch)
  ckpts = checkpoints.RunCheckpoints(str(tmp_path), max_to_keep=2)
  ckpts.save(2, state, {"batches_taken": 2})
  ckpts.close()

  tr8 = make_trainer(partitioning.MeshConfig(fsdp=True, fsdp_size=4, model_parallel=2), batch=batch)
  ckpts = checkpoints.RunCheckpoints(str(tmp_path))
  assert ckpts.latest_step() == 2
  restored, data_state = ckpts.restore(2, tr8.abstract_state)
  assert data_state == {"batches_taken": 2}
  assert int(restored.step) == 2
  kernel = restored.params["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"]
  assert kernel.sharding.spec == jax.sharding.PartitionSpec("fsdp", "model")
  assert tree_max_rel_diff(jax.device_get(restored.params), jax.device_get(state.params)) == 0.0
  assert tree_max_rel_diff(jax.device_get(restored.opt_state), jax.device_get(state.opt_state)) == 0.0
  # The restored state keeps training identically on the new mesh.
  gb1, gb8 = (trainer.global_batch(batch, t.batch_shardings) for t in (tr1, tr8))
  _, m1 = tr1.step(state, gb1)
  _, m8 = tr8.step(restored, gb8)
  np.testing.assert_allclose(float(m8["loss"]), float(m1["loss"]), rtol=1e-5)


@pytest.mark.slow
def test_params_load_from_param_checkpoint_step_dir_and_model_dir(tmp_path):
  batch = random_encdec_batch()
  tr = make_trainer(num_devices=1, batch=batch)
  state = _trained_state(tr, batch, steps=1)
  run = checkpoints.RunCheckpoints(str(tmp_path / "run"))
  run.save(1, state, {"batches_taken": 1})
  run.close()
  param_trees.save_params(str(tmp_path / "params_only"), jax.device_get(state.params), gin_config="# x\n")
  expected = jax.device_get(state.params)
  for path in (tmp_path / "params_only", tmp_path / "run", tmp_path / "run" / "checkpoints" / "1"):
    loaded = checkpoints.load_params(str(path), tr.abstract_state.params)
    assert tree_max_rel_diff(jax.device_get(loaded), expected) == 0.0, path
  assert (tmp_path / "params_only" / "model.gin").read_text() == "# x\n"


def test_not_a_checkpoint_is_named(tmp_path):
  with pytest.raises(checkpoints.CheckpointError, match=f"{tmp_path} is not a flan_jax checkpoint"):
    checkpoints.load_params(str(tmp_path))


def test_incomplete_save_is_ignored(tmp_path):
  """A step directory that orbax never finalised (a killed save) is not a checkpoint."""
  batch = random_encdec_batch()
  tr = make_trainer(num_devices=1, batch=batch)
  state = tr.init_state(0)
  run = checkpoints.RunCheckpoints(str(tmp_path))
  run.save(1, state, {"batches_taken": 1})
  run.close()
  # What a save killed mid-way leaves: orbax's temporary directory for step 2.
  os.makedirs(tmp_path / "checkpoints" / "2.orbax-checkpoint-tmp-123" / "state")
  assert checkpoints.RunCheckpoints(str(tmp_path)).latest_step() == 1
