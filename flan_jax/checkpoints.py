"""Checkpoints on orbax: a run's MODEL_DIR and plain parameter checkpoints.

A run directory (MODEL_DIR) is an orbax `CheckpointManager` root: one `<step>/`
directory per save holding the train state (`state`) and the input pipeline's
position (`data`, JSON). Orbax writes each step into a temporary directory and
renames it when complete, so a killed process never leaves a half-written step
that `latest_step` would pick up.

A parameter checkpoint (what `flan-jax convert from-hf` writes, and what
INITIAL_CHECKPOINT_PATH may point at) is a directory with `params/` (orbax
StandardCheckpointer) and `model.json` (the model record, `flan_jax.models.record`).
"""
from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

PyTree = Any


class CheckpointError(ValueError):
  """A checkpoint is missing, incomplete or does not match the model."""


def _abs(path: str) -> str:
  return path if "://" in path else os.path.abspath(path)


class RunCheckpoints:
  """Save / resume the train state of one run (MODEL_DIR) with orbax."""

  def __init__(self, model_dir: str, *, max_to_keep: int | None = 3, async_save: bool = True):
    self.directory = os.path.join(_abs(model_dir), "checkpoints")
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        enable_async_checkpointing=async_save, create=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "data"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: PyTree, data_state: dict) -> None:
    """Starts an asynchronous save of `step`; the caller decides when one is due."""
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)), force=True)

  def restore(self, step: int, abstract_state: PyTree) -> tuple[PyTree, dict]:
    """Restores onto the shardings in `abstract_state` (any mesh, not only the saving one)."""
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    except (ValueError, KeyError, FileNotFoundError) as e:
      raise CheckpointError(
          f"cannot restore step {step} from {self.directory}: {e}. If the model or optimizer "
          "changed since it was written, start a new MODEL_DIR or pass the old run as "
          "INITIAL_CHECKPOINT_PATH (parameters only).") from e
    return restored.state, dict(restored.data)

  def close(self):
    self._manager.wait_until_finished()
    self._manager.close()


def save_params(directory: str, params: PyTree, gin_config: str | None = None) -> None:
  """Writes a parameter-only checkpoint (numpy or jax arrays) to `directory`."""
  directory = _abs(directory)
  os.makedirs(directory, exist_ok=True)
  ckptr = ocp.StandardCheckpointer()
  ckptr.save(os.path.join(directory, "params"), params, force=True)
  ckptr.wait_until_finished()
  if gin_config is not None:
    with open(os.path.join(directory, "model.gin"), "w") as f:
      f.write(gin_config)


def _find_params_item(path: str) -> tuple[str, str]:
  """Resolves INITIAL_CHECKPOINT_PATH forms to (orbax item dir, kind)."""
  path = _abs(path)
  if os.path.isdir(os.path.join(path, "params")):
    return os.path.join(path, "params"), "params"
  if os.path.isdir(os.path.join(path, "state")):  # a step directory of a run
    return os.path.join(path, "state"), "state"
  run_ckpts = os.path.join(path, "checkpoints")
  if os.path.isdir(run_ckpts):  # a MODEL_DIR: take its latest step
    steps = sorted(int(d) for d in os.listdir(run_ckpts) if d.isdigit())
    if steps:
      return os.path.join(run_ckpts, str(steps[-1]), "state"), "state"
  raise CheckpointError(
      f"{path} is not a flan_jax checkpoint: expected a directory with params/ (flan-jax convert), "
      "a run step directory with state/, or a MODEL_DIR with checkpoints/<step>/")


def _metadata_tree(item: str) -> PyTree:
  """The saved tree of array metadata (shapes, dtypes) of an orbax item."""
  import logging
  logging.disable(logging.WARNING)  # orbax warns about a step-level metadata file it does not need
  try:
    meta = ocp.StandardCheckpointer().metadata(item)
  finally:
    logging.disable(logging.NOTSET)
  tree = getattr(meta, "item_metadata", meta)
  return getattr(tree, "tree", tree)


def load_params(path: str, abstract_params: PyTree | None = None) -> PyTree:
  return load_params_and_step(path, abstract_params)[0]


def _optimizer_step(state: Any) -> int | None:
  """The Adafactor step a restored run state records (initial step + updates), if any."""
  opt = state.get("opt_state") if isinstance(state, dict) else None
  if isinstance(opt, dict) and "count" in opt and "initial_step" in opt:
    return int(np.asarray(opt["initial_step"])) + int(np.asarray(opt["count"]))
  return None


def load_params_and_step(path: str, abstract_params: PyTree | None = None) -> tuple[PyTree, int | None]:
  """Parameters as `load_params`, and the optimizer step the checkpoint records (a run's
  checkpoint: its Adafactor step; a parameter checkpoint: None).

  Loads parameters from a parameter checkpoint, a run step directory or a MODEL_DIR.

  With `abstract_params` (a tree of `jax.ShapeDtypeStruct` with shardings) the arrays
  are restored directly onto those shardings and the tree structure is checked.
  Without it they come back as host numpy arrays.
  """
  item, kind = _find_params_item(path)
  ckptr = ocp.StandardCheckpointer()
  if kind == "state":
    tree = _metadata_tree(item)
    if abstract_params is None:
      target = None
    else:
      target = jax.tree.map(lambda m: m, dict(tree))
      target["params"] = abstract_params
      target = jax.tree.map(
          lambda m: m if isinstance(m, jax.ShapeDtypeStruct) else jax.ShapeDtypeStruct(m.shape, m.dtype),
          target)
    restored = ckptr.restore(item, target)
    return restored["params"], _optimizer_step(restored)
  if abstract_params is None:
    return ckptr.restore(item), None
  try:
    return ckptr.restore(item, abstract_params), None
  except (ValueError, KeyError) as e:
    raise CheckpointError(f"parameters in {item} do not match the model: {e}") from e


def params_item(path: str) -> str:
  """The orbax item holding a checkpoint's parameters; "no such directory" / "no checkpoint in"
  errors name the path."""
  if not os.path.isdir(path):
    raise CheckpointError(f"no such directory: {path}")
  try:
    return _find_params_item(path)[0]
  except CheckpointError as e:
    raise CheckpointError(f"no checkpoint in {path}: expected params/ (flan-jax convert), a run step "
                          "directory with state/, or a MODEL_DIR with checkpoints/<step>/") from e


def check_params_structure(path: str, abstract_params: PyTree, model: str = "the model") -> None:
  """Raises CheckpointError naming the first parameter whose path or shape differs between the
  checkpoint at `path` and `abstract_params` (a few lines, not the whole tree)."""
  from flax import traverse_util
  item, kind = _find_params_item(path)
  tree = _metadata_tree(item)
  if kind == "state":
    tree = tree["params"]
  saved = {"/".join(k): tuple(v.shape) for k, v in traverse_util.flatten_dict(dict(tree)).items()}
  wanted = {"/".join(k): tuple(v.shape) for k, v in traverse_util.flatten_dict(dict(abstract_params)).items()}
  if saved == wanted:
    return
  first = min(set(saved) ^ set(wanted) or {k for k in saved if saved[k] != wanted[k]})
  if first not in saved:
    what = f"{model} has parameter {first} {wanted[first]}, which the checkpoint lacks"
  elif first not in wanted:
    what = f"the checkpoint has parameter {first} {saved[first]}, which {model} lacks"
  else:
    what = f"parameter {first} is {saved[first]} in the checkpoint but {wanted[first]} in {model}"
  raise CheckpointError(f"{path} holds another model ({len(saved)} parameters saved, {len(wanted)} expected): "
                        f"{what}. Use the model it was saved with, or another directory.")
