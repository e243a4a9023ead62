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

import logging
import os
import re
import sys
import time
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import traverse_util

from flan_jax import models
from flan_jax.checkpointing import param_trees, t5x
from flan_jax.models import record
from flan_jax.runtime.run_guard import SaveFailed

PyTree = Any


class CheckpointError(ValueError):
  """A checkpoint is missing, incomplete or does not match the model."""


def _abs(path: str) -> str:
  return path if "://" in path else os.path.abspath(path)


class _DropOrbaxErrors(logging.Filter):
  """Orbax logs a failed background save with a traceback per thread; RunCheckpoints reports
  it as one line (SaveFailed), so those records are dropped while a run is saving."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not (record.levelno >= logging.ERROR and "orbax" in record.pathname)


def _quiet_unraisable(previous):
  """After a failed save, tensorstore completes its writes into orbax's closed event loop and
  each one reports 'Event loop is closed' as an unraisable exception; those say nothing new."""
  def hook(unraisable):
    if isinstance(unraisable.exc_value, RuntimeError) and "Event loop is closed" in str(unraisable.exc_value):
      return
    previous(unraisable)
  return hook


class RunCheckpoints:
  """Save / resume the train state of one run (MODEL_DIR) with orbax.

  Saves are asynchronous; a save that fails in the background (disk full, permissions)
  surfaces as `run_guard.SaveFailed` at the next `check()`, which the loop calls every
  step. `restore_latest` validates the newest step before training from it.
  """

  def __init__(self, model_dir: str, *, max_to_keep: int | None = 3, async_save: bool = True):
    self.model_dir = _abs(model_dir)
    self.directory = os.path.join(self.model_dir, "checkpoints")
    self._options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        enable_async_checkpointing=async_save, create=True)
    self._saving: int | None = None
    self._manager = self._new_manager()
    self._log_filter = _DropOrbaxErrors()
    logging.getLogger("absl").addFilter(self._log_filter)
    self._unraisablehook = sys.unraisablehook
    sys.unraisablehook = _quiet_unraisable(self._unraisablehook)

  def _new_manager(self) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(self.directory, options=self._options, item_names=("state", "data"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def _save_failed(self, e: BaseException) -> SaveFailed:
    step = "" if self._saving is None else f" of step {self._saving}"
    return SaveFailed(f"saving the checkpoint{step} to {self.directory} failed: {_root_cause(e)}. "
                      "Earlier checkpoints are intact; fix the cause and rerun to resume.")

  def save(self, step: int, state: PyTree, data_state: dict) -> None:
    """Starts an asynchronous save of `step`; the caller decides when one is due."""
    self.wait()  # the previous save (orbax would wait for it too): its failure names its step
    self._saving = step
    try:
      self._manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)), force=True)
    except Exception as e:  # orbax and tensorstore raise assorted types for I/O failures
      raise self._save_failed(e) from e

  def check(self) -> None:
    """Raises SaveFailed if a background save has failed (cheap; called every step)."""
    try:
      self._manager.check_for_errors()
    except Exception as e:
      raise self._save_failed(e) from e

  # -- restore -----------------------------------------------------------------------------

  def step_path(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def _readable_or_raise(self, step: int, abstract_state: PyTree) -> None:
    """Checks the files of `step` and that its arrays match `abstract_state` in structure and
    shape. Unreadable -> _Unreadable; readable but a different model -> CheckpointError."""
    state_dir = os.path.join(self.step_path(step), "state")
    for name in ("_METADATA", "manifest.ocdbt"):
      if not os.path.isfile(os.path.join(state_dir, name)):
        raise _Unreadable(f"{os.path.join(state_dir, name)} is missing")
    if not os.path.isfile(os.path.join(self.step_path(step), "data", "metadata")):
      raise _Unreadable(f"{os.path.join(self.step_path(step), 'data', 'metadata')} is missing")
    try:
      from etils import epath
      meta = ocp.StandardCheckpointHandler().metadata(epath.Path(state_dir))
    except Exception as e:
      raise _Unreadable(f"{state_dir}/_METADATA cannot be read: {_root_cause(e)}") from e
    tree = getattr(meta, "tree", meta)
    saved = {_key_path(k): tuple(getattr(v, "shape", ()) or ())
             for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]}
    wanted = {_key_path(k): tuple(v.shape) for k, v in jax.tree_util.tree_flatten_with_path(abstract_state)[0]}
    if saved.keys() != wanted.keys() or any(saved[k] != wanted[k] for k in wanted):
      missing = sorted(wanted.keys() - saved.keys())[:3]
      extra = sorted(saved.keys() - wanted.keys())[:3]
      shapes = [f"{k}: saved {saved[k]} vs model {wanted[k]}" for k in sorted(wanted.keys() & saved.keys())
                if saved[k] != wanted[k]][:3]
      detail = "; ".join(filter(None, [missing and f"not in the checkpoint: {missing}",
                                       extra and f"not in the model: {extra}",
                                       shapes and f"shapes differ: {shapes}"]))
      raise CheckpointError(
          f"checkpoint {self.step_path(step)} was written for another model or optimizer ({detail}). "
          "Start a new MODEL_DIR, or pass the old run as INITIAL_CHECKPOINT_PATH (parameters only).")

  def restore(self, step: int, abstract_state: PyTree) -> tuple[PyTree, dict]:
    """Restores onto the shardings in `abstract_state` (any mesh, not only the saving one)."""
    self._readable_or_raise(step, abstract_state)
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    except Exception as e:  # tensorstore / orbax errors on truncated or missing array files
      raise _Unreadable(f"{self.step_path(step)} cannot be read: {_root_cause(e)}") from e
    return restored.state, dict(restored.data)

  def restore_latest(self, abstract_state: PyTree, *, fallback: bool = False,
                     say=print) -> tuple[int, PyTree, dict] | None:
    """(step, state, data state) of the newest checkpoint, validated; None if there is none.

    An unreadable newest step is an error naming its path, unless `fallback` (the gin flag
    `train.fallback_to_previous_checkpoint`): then it is moved to
    MODEL_DIR/checkpoints_unreadable/ (kept, not deleted) and the previous step is tried.
    """
    steps = sorted(self.all_steps(), reverse=True)
    for i, step in enumerate(steps):
      try:
        state, data_state = self.restore(step, abstract_state)
        return step, state, data_state
      except _Unreadable as e:
        previous = steps[i + 1] if i + 1 < len(steps) else None
        if not fallback or previous is None:
          hint = (f"the previous checkpoint is step {previous}: to resume from it, add "
                  f"--gin.train.fallback_to_previous_checkpoint=True (step {step} will be moved to "
                  f"{os.path.join(self.model_dir, 'checkpoints_unreadable')})" if previous is not None
                  else "there is no earlier checkpoint; move it away to start afresh")
          raise CheckpointError(f"checkpoint step {step} is unreadable: {e}; {hint}") from None
        self._set_aside(step)
        say(f"checkpoint step {step} is unreadable ({e}); moved it to "
            f"{os.path.join(self.model_dir, 'checkpoints_unreadable')} and trying step {previous} "
            "(train.fallback_to_previous_checkpoint=True)")
    return None

  def _set_aside(self, step: int) -> None:
    aside = os.path.join(self.model_dir, "checkpoints_unreadable")
    if jax.process_index() == 0:
      os.makedirs(aside, exist_ok=True)
      target = os.path.join(aside, f"{step}-{int(time.time())}")
      os.rename(self.step_path(step), target)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices(f"flan_jax set aside checkpoint {step}")
    self._manager.close()
    self._manager = self._new_manager()

  def wait(self):
    try:
      self._manager.wait_until_finished()
      self._manager.check_for_errors()
    except Exception as e:
      raise self._save_failed(e) from e

  def close(self):
    try:
      self.wait()
      self._manager.close()
    finally:
      logging.getLogger("absl").removeFilter(self._log_filter)
      sys.unraisablehook = self._unraisablehook


def _key_path(path) -> str:
  """'params/decoder/layers_0/...' for a key path of dicts, lists or dataclasses alike."""
  parts = []
  for k in path:
    for attr in ("key", "name", "idx"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
  return "/".join(parts)


class _Unreadable(CheckpointError):
  """A checkpoint step whose files cannot be read (truncated, missing, deleted metadata)."""


def _root_cause(e: BaseException) -> str:
  """One line for an exception chain: the innermost OSError if any (disk full, permissions),
  else the first line of the outermost message."""
  seen, chain = set(), []
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    chain.append(e)
    e = e.__cause__ or e.__context__
  for err in chain:  # tensorstore reports an OS error inside its message
    code = re.search(r"\[os_error_code='?(\d+)'?\]", str(err))
    if code:
      path = re.search(r'Failed (?:writing|reading): "([^"]+)"', str(err))
      return f"[Errno {code.group(1)}] {os.strerror(int(code.group(1)))}" + (f": {path.group(1)}" if path else "")
  for err in reversed(chain):
    if isinstance(err, OSError) and err.strerror:
      where = f": {err.filename}" if err.filename else ""
      return f"{type(err).__name__}: [Errno {err.errno}] {err.strerror}{where}"
  text = str(chain[0]).strip().splitlines()
  line = text[0] if text else type(chain[0]).__name__
  line = line.split(" See full TensorStore details")[0]
  return (line[:400] + "...") if len(line) > 400 else line


def saved_steps(model_dir: str) -> list[int]:
  """The step numbers under MODEL_DIR/checkpoints (local paths; listed, not validated), sorted."""
  directory = os.path.join(_abs(model_dir), "checkpoints")
  if not os.path.isdir(directory):
    return []
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def step_of(path: str) -> int | None:
  """The step a checkpoint path stands for: a MODEL_DIR's latest, or a step directory's."""
  if os.path.isdir(os.path.join(path, "checkpoints")):
    steps = saved_steps(path)
    return steps[-1] if steps else None
  base = os.path.basename(os.path.normpath(path))
  return int(base) if base.isdigit() else None


def _find_params_item(path: str) -> tuple[str, str]:
  """Resolves INITIAL_CHECKPOINT_PATH forms to (orbax item dir, kind)."""
  path = _abs(path)
  if os.path.isdir(os.path.join(path, "params")):
    return os.path.join(path, "params"), "params"
  if os.path.isdir(os.path.join(path, "state")):  # a step directory of a run
    return os.path.join(path, "state"), "state"
  steps = saved_steps(path)
  if steps:  # a MODEL_DIR: take its latest step
    return os.path.join(path, "checkpoints", str(steps[-1]), "state"), "state"
  raise CheckpointError(
      f"{path} is not a flan_jax checkpoint: expected a directory with params/ (flan-jax convert), "
      "a run step directory with state/, or a MODEL_DIR with checkpoints/<step>/")


def _metadata_tree(item: str) -> PyTree:
  """The saved tree of array metadata (shapes, dtypes) of an orbax item. (orbax's warning that
  the item has no step metadata of its own is dropped by `flan_jax.runtime.console.quiet`.)"""
  meta = ocp.StandardCheckpointer().metadata(item)
  tree = getattr(meta, "item_metadata", meta)
  return getattr(tree, "tree", tree)


def has_run_checkpoints(model_dir: str) -> bool:
  """Whether MODEL_DIR already holds a step to resume from (local paths; looked at, not validated)."""
  if "://" in _abs(model_dir):
    return True  # resolved by the manager; INITIAL_CHECKPOINT_PATH is then checked when loaded
  return bool(saved_steps(model_dir))


def is_t5x(path: str) -> bool:
  """Whether PATH is a T5X checkpoint (read by `flan_jax.checkpointing.t5x`), not a flan_jax one
  (no flan_jax files there)."""
  local_flan = "://" not in str(path) and os.path.isdir(path) and (
      os.path.isdir(os.path.join(path, "params")) or os.path.isdir(os.path.join(path, "state"))
      or bool(saved_steps(path)))
  return not local_flan and t5x.looks_like_t5x(path)


def read_model_record(path: str) -> record.ModelRecord:
  """The model record of any checkpoint: `record.read_record`'s (model.json of a converted
  checkpoint, a MODEL_DIR or one of its step directories), or for a T5X checkpoint (which
  records no model) the model its parameters' shapes give."""
  if t5x.looks_like_t5x(path) and not os.path.isfile(os.path.join(path, record.RECORD_FILE)):
    return t5x.model_record(path)
  return record.read_record(path)


def check_params_path(path: str) -> None:
  """Fails early, naming the path, if INITIAL_CHECKPOINT_PATH is not a checkpoint we can load
  (a T5X checkpoint: its index is read and checked)."""
  if is_t5x(path):
    try:
      t5x.open_checkpoint(path)
    except ValueError as e:
      raise CheckpointError(f"INITIAL_CHECKPOINT_PATH: {e}") from None
    return
  if "://" in path:
    return
  if not os.path.exists(path):
    raise CheckpointError(f"INITIAL_CHECKPOINT_PATH {path} does not exist")
  try:
    _find_params_item(path)
  except CheckpointError as e:
    raise CheckpointError(f"INITIAL_CHECKPOINT_PATH: {e}") from None


def load_params(path: str, abstract_params: PyTree | None = None) -> PyTree:
  return load_params_and_step(path, abstract_params)[0]


def load_initial(path: str, abstract_params: PyTree) -> tuple[PyTree, int | None, dict, str | None]:
  """What INITIAL_CHECKPOINT_PATH starts a run from: (parameters on `abstract_params`'
  shardings, the step the checkpoint records (None if none), Adafactor moments to carry
  (`convert.t5x`'s form, {} if none) and, when there are none, why not (None if the
  checkpoint kind never has them: a flan_jax run's state restarts its optimizer)."""
  if is_t5x(path):
    ckpt, cfg = _t5x_model(path, abstract_params)
    return t5x.read_params(ckpt, cfg, abstract_params, _place), ckpt.step, *t5x.read_moments(ckpt, cfg)
  params, step = load_params_and_step(path, abstract_params)
  moments_dir = os.path.join(_abs(path), "adafactor_moments", "params")
  if os.path.isdir(moments_dir):
    with jax.default_device(jax.devices("cpu")[0]):
      tree = ocp.StandardCheckpointer().restore(moments_dir)
    return params, step, t5x.moments_from_tree(jax.tree.map(np.asarray, param_trees.plain(tree))), None
  return params, step, {}, None


def _t5x_model(path: str, abstract_params: PyTree | None):
  """(opened T5X checkpoint, the T5Config it is read as: its shapes', laid out as
  `abstract_params` is)."""
  import dataclasses
  ckpt = t5x.open_checkpoint(path)
  cfg, _ = t5x.infer_config(ckpt)
  return ckpt, dataclasses.replace(cfg, scan_layers=_stacked(abstract_params)) if abstract_params is not None else cfg


def _place(x: np.ndarray, target) -> jax.Array:
  """A host array onto `target`'s sharding (each device takes its slice), in its dtype."""
  x = np.asarray(x).astype(target.dtype)
  sharding = getattr(target, "sharding", None)
  if sharding is None:
    return jax.numpy.asarray(x)
  return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


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
  are restored directly onto those shardings and the tree structure is checked. A
  checkpoint saved in the other layer layout (unscanned `layers_i` vs a `scan_layers`
  stack, e.g. a converted Flan-T5 loaded into a scanned recipe) is read on the host,
  stacked or unstacked, and placed on those shardings.
  Without it they come back as host numpy arrays.

  A T5X checkpoint (`flan_jax.checkpointing.t5x`) is read array by array onto those shardings;
  its step is T5X's. A converted checkpoint's step is the one its model.json records.
  """
  if is_t5x(path):
    ckpt, cfg = _t5x_model(path, abstract_params)
    return t5x.read_params(ckpt, cfg, abstract_params, _place if abstract_params is not None else None), ckpt.step
  item, kind = _find_params_item(path)
  if kind == "params":
    params, _ = _load_params_item(item, kind, abstract_params)
    return params, _recorded_step(path)
  return _load_params_item(item, kind, abstract_params)


def _recorded_step(path: str) -> int | None:
  """The `step` a converted checkpoint's model record holds (from-t5x), else None."""
  try:
    return record.read_record(path).step
  except record.RecordError:
    return None


def _load_params_item(item: str, kind: str, abstract_params: PyTree | None) -> tuple[PyTree, int | None]:
  ckptr = ocp.StandardCheckpointer()
  tree = _metadata_tree(item)
  saved_params = tree["params"] if kind == "state" else tree
  if abstract_params is not None and _stacked(saved_params) != _stacked(abstract_params):
    why = param_trees.structure_difference(saved_params, abstract_params)  # from metadata, before reading anything
    if why:
      raise CheckpointError(f"parameters in {item} do not match the model, even after converting the layer "
                            f"layout (scan_layers): {why}")
    return _load_relayout(ckptr, item, kind, abstract_params)
  if kind == "state":
    if abstract_params is None:
      target = None
    else:
      target = jax.tree.map(lambda m: m, dict(tree))
      target["params"] = abstract_params
      # The optimizer state comes along only for its step: onto this process's first device,
      # whatever mesh saved it (without a sharding orbax would ask for the saving topology).
      one = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
      target = jax.tree.map(
          lambda m: m if isinstance(m, jax.ShapeDtypeStruct) else jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=one),
          target)
    restored = ckptr.restore(item, target)
    return restored["params"], _optimizer_step(restored)
  if abstract_params is None:
    return ckptr.restore(item), None
  try:
    return ckptr.restore(item, abstract_params), None
  except (ValueError, KeyError) as e:
    raise CheckpointError(f"parameters in {item} do not match the model: {e}") from e


def _stacked(tree: PyTree) -> bool:
  return models.has_stacked_layers(param_trees.plain(tree))


def _load_relayout(ckptr, item: str, kind: str, abstract_params: PyTree) -> tuple[PyTree, int | None]:
  """Restores on the host, converts the layer layout to `abstract_params`'s, places each array."""
  with jax.default_device(jax.devices("cpu")[0]):
    restored = ckptr.restore(item)
  step = _optimizer_step(restored) if kind == "state" else None
  params = param_trees.plain(restored["params"] if kind == "state" else restored)
  params = jax.tree.map(np.asarray, params)
  params = models.unstack_layers(params) if _stacked(params) else models.stack_layers(params)
  want = param_trees.plain(abstract_params)

  return jax.tree.map(_place, params, want), step


def params_item(path: str) -> str:
  """The orbax item holding a checkpoint's parameters; "no such directory" / "no checkpoint in"
  errors name the path. A T5X checkpoint: its checkpoint_<step> directory."""
  if is_t5x(path):
    try:
      return t5x.checkpoint_dir(path)
    except ValueError as e:
      raise CheckpointError(str(e)) from None
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
  if is_t5x(path):
    ckpt = t5x.open_checkpoint(path)
    shapes = t5x.flan_shapes(t5x.layout(ckpt, None)[0])
    saved = traverse_util.unflatten_dict({p: np.empty(s, np.uint8) for p, s in shapes.items()})
    why = param_trees.structure_difference(saved, abstract_params, model)
    if why:
      raise CheckpointError(f"{path} holds another model {why}. Use the model it was saved with.")
    return
  item, kind = _find_params_item(path)
  tree = _metadata_tree(item)
  why = param_trees.structure_difference(tree["params"] if kind == "state" else tree, abstract_params, model)
  if why:
    raise CheckpointError(f"{path} holds another model {why}. Use the model it was saved with, or another "
                          "directory.")
