"""Checkpoints on orbax: a run's MODEL_DIR and plain parameter checkpoints.

A run directory (MODEL_DIR) is an orbax `CheckpointManager` root: one `<step>/`
directory per save holding the train state (`state`) and the input pipeline's
position (`data`, JSON). Orbax writes each step into a temporary directory and
renames it when complete, so a killed process never leaves a half-written step
that `latest_step` would pick up.

A parameter checkpoint (what `flan-jax convert from-hf` writes, and what
INITIAL_CHECKPOINT_PATH may point at) is a directory with `params/` (orbax
StandardCheckpointer) and optionally `model.gin`.
"""
from __future__ import annotations

import ast
import dataclasses
import os
import re
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

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

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

  def wait(self):
    self._manager.wait_until_finished()

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
    meta = ckptr.metadata(item)
    tree = getattr(meta, "item_metadata", meta)
    tree = getattr(tree, "tree", tree)
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


def to_numpy(tree: PyTree) -> PyTree:
  return jax.tree.map(np.asarray, tree)


# ----------------------------------------------------------------------------------------
# The model a checkpoint was saved with, from the gin file next to it.


def _gin_statements(text: str) -> list[tuple[str, str]]:
  """(key, value text) of each binding in a gin file's text; continuation lines joined."""
  stmts: list[list[str]] = []
  for line in text.splitlines():
    if not line.strip() or line.lstrip().startswith("#"):
      continue
    if line[0] in " \t" and stmts:
      stmts[-1].append(line.strip())
    elif "=" in line:
      stmts.append([line.strip()])
  out = []
  for parts in stmts:
    key, value = " ".join(parts).split("=", 1)
    out.append((key.strip(), value.strip()))
  return out


def model_config_from_gin_text(text: str, where: str = "config.gin") -> Any:
  """Builds the T5Config / PaLMConfig that a saved gin config binds, without touching the
  global gin state (literal values and %MACROs only)."""
  from flan_jax.models import palm, t5
  stmts = _gin_statements(text)
  macros = {k: v for k, v in stmts if re.fullmatch(r"[A-Z_][A-Z0-9_]*", k)}

  def value(v: str, depth: int = 0):
    if v.startswith("%") and depth < 10:
      name = v[1:]
      if name not in macros:
        raise ValueError(f"{where}: macro %{name} is not defined")
      return value(macros[name], depth + 1)
    return ast.literal_eval(v)

  # gin's operative config scopes the bindings by the macro that held the config
  # (`MODEL_CONFIG/T5Config.emb_dim = 128`); those override unscoped ones.
  bound = dict(stmts).get("train.model_config", "%MODEL_CONFIG")
  scope = bound[1:] if bound.startswith("%") else ""
  for cls in (t5.T5Config, palm.PaLMConfig):
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for prefix in (f"{cls.__name__}.", f"{scope}/{cls.__name__}."):
      kwargs.update({k[len(prefix):]: value(v) for k, v in stmts
                     if k.startswith(prefix) and k[len(prefix):] in fields})
    if kwargs:
      return cls(**kwargs)
  raise ValueError(f"{where} binds no T5Config or PaLMConfig; bind evaluate.model_config in gin "
                   "(e.g. include 'models/t5_1_1/tiny.gin' and set evaluate.model_config = %MODEL_CONFIG)")


def find_model_config(checkpoint_path: str) -> Any:
  """T5Config / PaLMConfig of a checkpoint: its `model.gin` or `config.gin`, or those of
  the run it belongs to (a step directory sits in MODEL_DIR/checkpoints/<step>)."""
  path = os.path.abspath(checkpoint_path)
  for directory in (path, os.path.dirname(os.path.dirname(path))):
    for name in ("model.gin", "config.gin"):
      candidate = os.path.join(directory, name)
      if os.path.isfile(candidate):
        with open(candidate) as f:
          return model_config_from_gin_text(f.read(), candidate)
  raise FileNotFoundError(
      f"no model.gin or config.gin in {checkpoint_path} (nor in its run directory): cannot tell the "
      "model's dimensions; give them with a model gin file (evaluate.model_config or infer.model_config "
      "= %MODEL_CONFIG)")
