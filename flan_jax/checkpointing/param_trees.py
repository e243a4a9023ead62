"""Parameter trees as files and as shapes: plain nested dicts of a checkpoint's arrays, the
first difference between two trees in either layer layout, and a parameter-only orbax
checkpoint written (what `flan-jax convert` produces)."""
from __future__ import annotations

import os
from typing import Any

import orbax.checkpoint as ocp
from flax import traverse_util

PyTree = Any


def _abs(path: str) -> str:
  return path if "://" in path else os.path.abspath(path)


def plain(tree: PyTree) -> PyTree:
  """Nested plain dicts of the leaves (orbax metadata trees may be other mappings)."""
  if hasattr(tree, "items") and not hasattr(tree, "shape"):
    return {k: plain(v) for k, v in tree.items()}
  return tree


def _unstacked_shapes(flat: dict) -> dict[str, tuple[int, ...]]:
  """{'a/layers_3/b': shape} from flattened parameters of either layer layout: a scanned
  stack `a/layers/b` [n, ...] is listed as its n layers, so the two layouts compare equal."""
  out = {}
  for k, v in flat.items():
    shape = tuple(v.shape)
    if "layers" in k:
      at = k.index("layers")
      for i in range(shape[0]):
        out["/".join(k[:at] + (f"layers_{i}",) + k[at + 1:])] = shape[1:]
    else:
      out["/".join(k)] = shape
  return out


def structure_difference(saved: PyTree, wanted: PyTree, model: str = "the model") -> str | None:
  """None if two parameter trees (arrays or metadata) have the same paths and shapes, layer by
  layer in either layout; else a line naming the first parameter that differs."""
  saved = _unstacked_shapes(traverse_util.flatten_dict(plain(saved)))
  wanted = _unstacked_shapes(traverse_util.flatten_dict(plain(wanted)))
  if saved == wanted:
    return None
  first = min(set(saved) ^ set(wanted) or {k for k in saved if saved[k] != wanted[k]})
  if first not in saved:
    what = f"{model} has parameter {first} {wanted[first]}, which the checkpoint lacks"
  elif first not in wanted:
    what = f"the checkpoint has parameter {first} {saved[first]}, which {model} lacks"
  else:
    what = f"parameter {first} is {saved[first]} in the checkpoint but {wanted[first]} in {model}"
  return f"({len(saved)} parameters saved, {len(wanted)} expected): {what}"


def save_params(directory: str, params: PyTree, gin_config: str | None = None, *, streaming: bool = False) -> None:
  """Writes a parameter-only checkpoint (numpy or jax arrays) to `directory`.

  `streaming`: for a tree of jax arrays as large as the host's memory allows (a converted
  XXL): written synchronously, 1 GB in flight, without orbax's compression, whose buffers
  would hold a second copy of much of the model; the same format, read back as any other."""
  directory = _abs(directory)
  os.makedirs(directory, exist_ok=True)
  if streaming:
    handler = ocp.PyTreeCheckpointHandler(save_concurrent_gb=1, use_compression=False)
    ocp.Checkpointer(handler).save(os.path.join(directory, "params"), args=ocp.args.PyTreeSave(params), force=True)
  else:
    ckptr = ocp.StandardCheckpointer()
    ckptr.save(os.path.join(directory, "params"), params, force=True)
    ckptr.wait_until_finished()
  if gin_config is not None:
    with open(os.path.join(directory, "model.gin"), "w") as f:
      f.write(gin_config)
