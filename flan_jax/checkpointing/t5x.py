"""T5X checkpoints: read wherever flan_jax takes a checkpoint, and `flan-jax convert from-t5x`.

The format (T5X's `checkpoints.Checkpointer`, format version 3, the one the released T5 v1.1
LM-adapted and Flan-T5 checkpoints use) is a directory `checkpoint_<step>/` holding

  * `checkpoint`: msgpack of {"version": 3, "optimizer": STATE}, STATE being T5X's train state
    dict {"target": parameters, "state": {"step": int, "param_states": {parameter path: the
    optimizer's per-parameter state, Adafactor's v_row / v_col / v / m}}};
  * one zarr array per large leaf, in a subdirectory named after the leaf's path with '.'
    separators (`target.encoder.layers_0.attention.query.kernel`). In the msgpack such a leaf is
    its tensorstore spec (driver zarr, dtype, metadata with shape and chunks, and a kvstore
    path relative to the checkpoint directory); small leaves are inline arrays.

Supported here: that layout, in a local directory or at `gs://bucket/...` (tensorstore's gcs
driver); T5X's T5 v1.1 network (`t5x/examples/t5`: unscanned `layers_N`, attention kernels with
joined heads [D, H*K]) and its scalable variant (`t5x/examples/scalable_t5`: each stack one
scanned `encoder/encoder`, `decoder/decoder` with the layer axis at position 1, a relative-
position table per layer); bfloat16 and float32. T5X runs written with orbax
(`use_orbax=True`: `_CHECKPOINT_METADATA`, no msgpack `checkpoint` file) are not read; the
error says so.

Arrays are read one at a time, each exactly once, converted to flan_jax's layout and placed on
the target shardings (or kept on the host for `from-t5x`), so that no more than one parameter
(one stacked layer group for a scanned model) is on the host besides what was already placed.

Adafactor's statistics are carried as *moments*: for each flan_jax parameter (unscanned path),
the accumulators T5X kept, each under the flan_jax dims it keeps (`keep0`, `keep1_2`, ...;
a full second moment keeps every dim). `optim.adafactor_moments` takes from them the ones
flan_jax's own factoring asks for; when a parameter was factored differently it starts from
zero moments, and the caller says so.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
from flax import serialization, traverse_util

from flan_jax.checkpointing import hf, param_trees
from flan_jax.core import optim
from flan_jax.models import has_stacked_layers, record
from flan_jax.models.t5 import EncoderDecoder, T5Config
from flan_jax.checkpointing.hf import ConversionError

PyTree = Any
INDEX_FILE = "checkpoint"
_STEP_DIR = re.compile(r"^checkpoint_(\d+)$")
_ATTENTION = ("attention", "self_attention", "encoder_decoder_attention")
_STACKS = ("encoder", "decoder")


# ----------------------------------------------------------------------------------------
# Locating and opening a checkpoint.


def _is_url(path: str) -> bool:
  return "://" in str(path)


def _kvstore(directory: str) -> dict:
  """Tensorstore kvstore spec of a directory (trailing '/'): local path or gs://bucket/prefix."""
  directory = str(directory).rstrip("/") + "/"
  m = re.fullmatch(r"gs://([^/]+)/?(.*)", directory, re.DOTALL)
  if m:
    return {"driver": "gcs", "bucket": m.group(1), "path": m.group(2)}
  if _is_url(directory):
    raise ConversionError(f"{directory}: only local paths and gs:// are read as T5X checkpoints")
  return {"driver": "file", "path": os.path.abspath(directory) + "/"}


def _read_object(directory: str, name: str) -> bytes | None:
  """The bytes of DIRECTORY/NAME, or None when it does not exist."""
  if not _is_url(directory):
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
      return None
    with open(path, "rb") as f:
      return f.read()
  import tensorstore as ts
  try:
    result = ts.KvStore.open(_kvstore(directory)).result().read(name).result()
  except Exception as e:  # pylint: disable=broad-except  (tensorstore raises ValueError & co.)
    raise ConversionError(f"{directory.rstrip('/')}/{name}: cannot be read ({_first_line(e)})") from e
  return None if result.state == "missing" else bytes(result.value)


def _list_dir(directory: str) -> list[str]:
  """The names in a directory (one level: a T5X model directory holds many checkpoints, each
  of many arrays, which a recursive object listing would walk)."""
  if not _is_url(directory):
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []
  import tensorflow as tf  # its gfile lists one level of gs://
  try:
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(directory))
  except Exception:  # pylint: disable=broad-except  (not found, no credentials)
    return []


def _first_line(e: BaseException) -> str:
  text = (str(e).strip().splitlines() or [type(e).__name__])[0]
  return text.split(" [source locations=")[0][:300]


def looks_like_t5x(path: str) -> bool:
  """Whether PATH is (or points into) a T5X msgpack checkpoint: a `checkpoint` file, a
  directory holding one, or a T5X model directory of `checkpoint_<step>/` directories.
  Local paths are looked at without reading anything; a gs:// path is one when it names a
  `checkpoint_<step>` directory or its index, or holds an index itself."""
  path = str(path).rstrip("/")
  if not _is_url(path):
    if os.path.isfile(path) and os.path.basename(path) == INDEX_FILE:
      return True
    if os.path.isfile(os.path.join(path, INDEX_FILE)):
      return True
    return os.path.isdir(path) and any(_STEP_DIR.match(d) and os.path.isfile(os.path.join(path, d, INDEX_FILE))
                                       for d in os.listdir(path))
  if not path.startswith("gs://"):
    return False
  if path.endswith("/" + INDEX_FILE) or _STEP_DIR.match(path.rsplit("/", 1)[-1]):
    return True
  try:  # one object read; a gs:// T5X model directory is named by its checkpoint_<step>
    return _read_object(path, INDEX_FILE) is not None
  except ConversionError:
    return False


def checkpoint_dir(path: str) -> str:
  """The `checkpoint_<step>` directory PATH stands for (PATH itself, the directory of a
  `checkpoint` file, or a model directory's newest `checkpoint_<step>`)."""
  path = str(path).rstrip("/")
  if path.endswith("/" + INDEX_FILE) and (_is_url(path) or os.path.isfile(path)):
    return path[: -len(INDEX_FILE) - 1]
  if not _is_url(path) and not os.path.exists(path):
    raise ConversionError(f"{path} does not exist")
  if (_is_url(path) and _STEP_DIR.match(path.rsplit("/", 1)[-1])) or (
      not _is_url(path) and os.path.isfile(os.path.join(path, INDEX_FILE))):
    return path
  steps = sorted((int(m.group(1)), d) for d in _list_dir(path) if (m := _STEP_DIR.match(d)))
  if steps:
    return f"{path}/{steps[-1][1]}"
  if _read_object(path, INDEX_FILE) is not None:
    return path
  orbax = [n for n in ("_CHECKPOINT_METADATA", "state") if n in _list_dir(path)]
  if orbax:
    raise ConversionError(f"{path} is a T5X checkpoint written with orbax ({orbax[0]}), which flan_jax does not "
                          "read; restore it with T5X and save it with use_orbax=False (msgpack + tensorstore)")
  raise ConversionError(f"{path} has no T5X '{INDEX_FILE}' file (the msgpack index of a checkpoint_<step> "
                        "directory) and no checkpoint_<step> directories")


@dataclasses.dataclass
class _Leaf:
  name: str                   # '/'-path in T5X's state dict: 'target/encoder/layers_0/...'
  shape: tuple[int, ...]
  dtype: str
  value: np.ndarray | None    # inline in the msgpack
  spec: dict | None           # tensorstore spec, kvstore path relative to the checkpoint


def _is_spec(x: Any) -> bool:
  return isinstance(x, dict) and "driver" in x and ("kvstore" in x or "path" in x)


def _flatten(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
  if isinstance(tree, dict) and not _is_spec(tree):
    for k, v in tree.items():
      yield from _flatten(v, f"{prefix}/{k}" if prefix else str(k))
  else:
    yield prefix, tree


def open_checkpoint(path: str) -> "T5XCheckpoint":
  """The opened checkpoint PATH stands for, its index read once per process: loading for
  generate/eval asks for the record, the structure and the parameters of the same checkpoint,
  and a written T5X checkpoint does not change."""
  return _open_cached(checkpoint_dir(path))


@functools.lru_cache(maxsize=4)
def _open_cached(directory: str) -> "T5XCheckpoint":
  return T5XCheckpoint(directory)


class T5XCheckpoint:
  """An opened T5X checkpoint: its msgpack index read once; arrays read on demand."""

  def __init__(self, path: str):
    self.directory = checkpoint_dir(path)
    self.index_path = f"{self.directory}/{INDEX_FILE}"
    raw = _read_object(self.directory, INDEX_FILE)
    if raw is None:
      raise ConversionError(f"{self.directory} has no T5X '{INDEX_FILE}' file (the msgpack index)")
    try:
      contents = serialization.msgpack_restore(raw)
    except Exception as e:  # pylint: disable=broad-except  (msgpack raises assorted types)
      raise ConversionError(f"{self.index_path}: not a T5X msgpack index, truncated or corrupt? "
                            f"({_first_line(e)})") from e
    if not isinstance(contents, dict) or not isinstance(contents.get("optimizer"), dict):
      raise ConversionError(f"{self.index_path}: not a T5X checkpoint index (no 'optimizer' state dict)")
    self.version = contents.get("version")
    if self.version is not None and int(self.version) < 2:
      raise ConversionError(f"{self.index_path}: T5X checkpoint format version {self.version}; versions 2 and "
                            "3 are read")
    self.leaves: dict[str, _Leaf] = {}
    for name, value in _flatten(contents["optimizer"]):
      if _is_spec(value):
        meta = value.get("metadata") or {}
        shape = tuple(int(s) for s in meta.get("shape", ()))
        self.leaves[name] = _Leaf(name, shape, str(value.get("dtype", "float32")), None, value)
      elif value is None or (isinstance(value, dict) and not value):
        continue
      else:
        arr = np.asarray(value)
        self.leaves[name] = _Leaf(name, tuple(arr.shape), arr.dtype.name, arr, None)
    if not any(n.startswith("target/") for n in self.leaves):
      raise ConversionError(f"{self.index_path}: the state dict has no 'target' (parameters)")
    self.reads: dict[str, int] = {}  # arrays read, by name: each parameter should be read once
    step = self.leaves.get("state/step")
    self.step = int(np.asarray(self.read("state/step"))) if step is not None else None

  def params(self) -> dict[str, _Leaf]:
    """The parameters, by path without the 'target/' prefix."""
    return {n[len("target/"):]: leaf for n, leaf in self.leaves.items() if n.startswith("target/")}

  def param_states(self) -> dict[str, _Leaf]:
    return {n[len("state/param_states/"):]: leaf for n, leaf in self.leaves.items()
            if n.startswith("state/param_states/")}

  def _where(self, leaf: _Leaf) -> str:
    rel = (leaf.spec.get("kvstore") or {}).get("path") or leaf.spec.get("path") or leaf.name.replace("/", ".")
    return f"{self.directory}/{rel}"

  def read(self, name: str) -> np.ndarray:
    """The whole array NAME ('target/...' or 'state/...'), from the index or tensorstore."""
    leaf = self.leaves[name]
    self.reads[name] = self.reads.get(name, 0) + 1
    if leaf.value is not None:
      return leaf.value
    import tensorstore as ts
    spec = json.loads(json.dumps(leaf.spec))  # a deep copy of plain data
    rel = (spec.get("kvstore") or {}).get("path") or spec.pop("path", None)
    if not rel:
      raise ConversionError(f"{self.index_path}: the spec of {name} names no path")
    kv = _kvstore(self.directory)
    kv["path"] = kv["path"] + rel.strip("/") + "/"
    spec["kvstore"] = kv
    spec.pop("path", None)
    where = self._where(leaf)
    try:
      store = ts.open(spec, open=True, read=True).result()
      arr = store.read().result()
    except Exception as e:  # pylint: disable=broad-except  (missing chunks, corrupt gzip, bad metadata)
      raise ConversionError(f"{where}: cannot read parameter {name} ({_first_line(e)}); the checkpoint is "
                            "truncated or corrupt") from e
    if tuple(arr.shape) != leaf.shape and leaf.shape:
      raise ConversionError(f"{where}: {name} has shape {tuple(arr.shape)} but the index says {leaf.shape}")
    return np.asarray(arr)


# ----------------------------------------------------------------------------------------
# T5X's layouts -> flan_jax's (unscanned) parameter paths.


@dataclasses.dataclass(frozen=True)
class _Source:
  """How one T5X array becomes flan_jax parameters: `layer_axis` (a scanned stack) is split
  into `layers_i`; then each T5X dim becomes the flan_jax dims `groups[d]` (a joined heads
  dim [H*K] splits into [H, K])."""
  t5x_name: str               # path under 'target/'
  flan_paths: tuple[tuple[str, ...], ...]   # one per layer (or one)
  layer_axis: int | None
  t5x_axes: tuple[str, ...]   # T5X's logical axis names, layer axis included
  groups: tuple[tuple[int, ...], ...]       # flan_jax per-layer dim sizes for each T5X per-layer dim


def _kernel_axes(sub: Sequence[str], ndim: int) -> tuple[str, ...]:
  """Logical axis names of a T5X parameter (layer axis excluded), as T5X's networks name them."""
  leaf, parent = sub[-1], sub[-2] if len(sub) > 1 else ""
  grand = sub[-3] if len(sub) > 2 else ""
  if leaf == "scale":
    return ("embed",)
  if leaf == "embedding":
    return ("vocab", "embed")
  if leaf == "rel_embedding":
    return ("heads", "relpos_buckets")
  if parent == "logits_dense":
    return ("embed", "vocab")
  if grand in _ATTENTION:
    if parent == "out":
      return ("joined_kv", "embed") if ndim == 2 else ("heads", "kv", "embed")
    return ("embed", "joined_kv") if ndim == 2 else ("embed", "heads", "kv")
  if grand == "mlp" or parent.startswith("wi") or parent == "wo":
    return ("mlp", "embed") if parent == "wo" else ("embed", "mlp")
  return tuple(f"dim{i}" for i in range(ndim))


def _scan_axis(params: Mapping[str, _Leaf], stack: str) -> int | None:
  """The layer axis of T5X's scanned stack (scalable_t5's param_scan_axis), from a layer norm
  scale: [D, L] (axis 1, T5X's default) or [L, D]; None when the stack is not scanned."""
  scale = params.get(f"{stack}/{stack}/pre_mlp_layer_norm/scale")
  if scale is None:
    return None
  embed = params["token_embedder/embedding"].shape[1] if "token_embedder/embedding" in params else None
  if len(scale.shape) != 2:
    raise ConversionError(f"target/{stack}/{stack}/pre_mlp_layer_norm/scale has shape {scale.shape}; a scanned "
                          "stack's layer norm is [D, layers]")
  return 0 if embed is not None and scale.shape[1] == embed and scale.shape[0] != embed else 1


def layout(ckpt: T5XCheckpoint, num_heads: int | None = None) -> tuple[list[_Source], dict]:
  """The sources of every flan_jax parameter and facts for the model config (`_infer`)."""
  params = ckpt.params()
  if "token_embedder/embedding" not in params:
    raise ConversionError(f"{ckpt.index_path}: no target/token_embedder/embedding; this is not a T5X T5 "
                          "(encoder-decoder) checkpoint")
  facts: dict[str, Any] = {"scanned": {}}
  heads = num_heads
  for stack in _STACKS:
    for name in (f"{stack}/relpos_bias/rel_embedding", f"{stack}/{stack}/relpos_bias/rel_embedding",
                 f"{stack}/layers_0/relpos_bias/rel_embedding"):
      if name in params and heads is None:
        heads = params[name].shape[0]
  if heads is None:
    raise ConversionError(f"{ckpt.index_path}: no relative-position table (relpos_bias/rel_embedding), so the "
                          "number of heads is unknown; name the model with --gin_file")
  facts["num_heads"] = heads
  sources = []
  for name, leaf in params.items():
    parts = name.split("/")
    stack = parts[0]
    scanned = stack in _STACKS and len(parts) > 2 and parts[1] == stack
    if scanned:
      axis = facts["scanned"].setdefault(stack, _scan_axis(params, stack))
      sub = parts[2:]
      if len(leaf.shape) <= axis:
        raise ConversionError(f"target/{name} has shape {leaf.shape}, which has no layer axis {axis}")
      n = leaf.shape[axis]
      per_layer = leaf.shape[:axis] + leaf.shape[axis + 1:]
      flan_paths = tuple((stack, f"layers_{i}", *sub) for i in range(n))
      facts.setdefault(f"{stack}_layers", n)
    else:
      axis, sub, per_layer = None, parts, leaf.shape
      flan_paths = (tuple(parts),)
      m = re.fullmatch(r"layers_(\d+)", parts[1]) if len(parts) > 1 else None
      if m:
        facts[f"{stack}_layers"] = max(facts.get(f"{stack}_layers", 0), int(m.group(1)) + 1)
    axes = _kernel_axes(sub, len(per_layer))
    groups = tuple((s,) for s in per_layer)
    if "joined_kv" in axes:
      d = axes.index("joined_kv")
      if per_layer[d] % heads:
        raise ConversionError(f"target/{name} has shape {leaf.shape}: its joined heads dim {per_layer[d]} is not a "
                              f"multiple of the {heads} heads of the relative-position table")
      groups = groups[:d] + ((heads, per_layer[d] // heads),) + groups[d + 1:]
    t5x_axes = axes if axis is None else axes[:axis] + ("layers",) + axes[axis:]
    sources.append(_Source(name, flan_paths, axis, t5x_axes, groups))
  return sources, facts


def _per_layer(arr: np.ndarray, source: _Source) -> list[np.ndarray]:
  """The flan_jax arrays of one T5X array, one per layer (or one)."""
  shape = tuple(s for g in source.groups for s in g)
  if source.layer_axis is None:
    return [arr.reshape(shape)]
  return [np.take(arr, i, axis=source.layer_axis).reshape(shape) for i in range(arr.shape[source.layer_axis])]


def flan_shapes(sources: Sequence[_Source]) -> dict[tuple[str, ...], tuple[int, ...]]:
  """flan_jax (unscanned) parameter path -> shape, from the index alone (nothing read)."""
  return {path: tuple(s for g in src.groups for s in g) for src in sources for path in src.flan_paths}


# ----------------------------------------------------------------------------------------
# The model a checkpoint holds.


def infer_config(ckpt: T5XCheckpoint, recipe=None):
  """(T5Config, list of notes): the model from the parameters' shapes; with `recipe` (a
  T5Config, e.g. from the recipe's gin file) every field the shapes determine is checked
  against it and the recipe's other fields (activations, dtype, scan_layers ...) are kept."""
  sources, facts = layout(ckpt, None)
  shapes = flan_shapes(sources)
  notes = []

  def shape(*path):
    if path not in shapes:
      raise ConversionError(f"{ckpt.index_path}: no parameter target/{'/'.join(path)}; this is not a T5X T5 v1.1 "
                            "checkpoint")
    return shapes[path]
  vocab, emb = shape("token_embedder", "embedding")
  q = shape("encoder", "layers_0", "attention", "query", "kernel")
  mlp = [k for k in ("wi_0", "wi_1", "wi") if ("encoder", "layers_0", "mlp", k, "kernel") in shapes]
  relpos = [p for p in shapes if p[-2:] == ("relpos_bias", "rel_embedding")]
  per_layer = any(len(p) > 3 for p in relpos)
  fields = dict(
      vocab_size=vocab, emb_dim=emb, num_heads=q[1], head_dim=q[2],
      mlp_dim=shape("encoder", "layers_0", "mlp", mlp[0], "kernel")[1] if mlp else 0,
      num_encoder_layers=facts.get("encoder_layers", 0), num_decoder_layers=facts.get("decoder_layers", 0),
      logits_via_embedding=("decoder", "logits_dense", "kernel") not in shapes,
      relative_attention_num_buckets=shapes[relpos[0]][1] if relpos else 32)
  if not mlp:
    raise ConversionError(f"{ckpt.index_path}: encoder/layers_0/mlp has no wi_0/wi_1 or wi kernel")
  if per_layer:
    fields["relpos_per_layer"] = True
  activations = ("gelu", "linear") if len(mlp) == 2 else ("relu",)
  if recipe is None:
    if len(mlp) == 2:
      notes.append("MLP activations ('gelu', 'linear') (gated GELU, T5 v1.1 and Flan-T5) assumed: shapes do not "
                   "record them; name the recipe with --gin_file to take its own")
    cfg = T5Config(mlp_activations=activations, **fields)
  else:
    if not isinstance(recipe, T5Config):
      raise ConversionError(f"the recipe's model is a {type(recipe).__name__}; T5X checkpoints hold T5 "
                            "(encoder-decoder) models")
    for key, value in fields.items():
      if getattr(recipe, key, False) != value:
        raise ConversionError(
            f"{ckpt.index_path}: {_field_param(key)} gives {key}={value!r}, but the recipe's model has "
            f"{getattr(recipe, key, None)!r}: the checkpoint is another model than the recipe names")
    if len(recipe.mlp_activations) != len(mlp):
      raise ConversionError(f"{ckpt.index_path}: encoder/layers_0/mlp has {mlp}, but the recipe's model has "
                            f"mlp_activations={recipe.mlp_activations}")
    cfg = recipe
  return cfg, notes


def _field_param(key: str) -> str:
  return {"vocab_size": "target/token_embedder/embedding", "emb_dim": "target/token_embedder/embedding",
          "num_heads": "target/encoder/relpos_bias/rel_embedding",
          "head_dim": "target/encoder/layers_0/attention/query/kernel",
          "mlp_dim": "target/encoder/layers_0/mlp/wi_0/kernel",
          "num_encoder_layers": "the number of target/encoder/layers_N",
          "num_decoder_layers": "the number of target/decoder/layers_N",
          "logits_via_embedding": "target/decoder/logits_dense/kernel (present or not)",
          "relative_attention_num_buckets": "target/encoder/relpos_bias/rel_embedding",
          "relpos_per_layer": "a relpos_bias table in every layer"}.get(key, key)


# ----------------------------------------------------------------------------------------
# Reading parameters (host or sharded) and Adafactor moments.


def _target_leaves(abstract: PyTree) -> list[tuple[tuple[str, ...], Any]]:
  return list(traverse_util.flatten_dict(param_trees.plain(abstract)).items())


def read_params(ckpt: T5XCheckpoint, cfg, abstract: PyTree | None = None,
                place: Callable[[np.ndarray, Any], Any] | None = None) -> PyTree:
  """The parameters in flan_jax's layout: `cfg.scan_layers` stacks them. With `abstract` (the
  model's tree of ShapeDtypeStructs, either layout) its structure is checked first, from the
  index, and `place(array, abstract_leaf)` puts each array where it belongs (e.g. onto its
  sharding). Each T5X array is read once; a host array is dropped once its last parameter
  has been placed."""
  sources, _ = layout(ckpt, cfg.num_heads)
  shapes = flan_shapes(sources)
  if abstract is None:
    wanted = traverse_util.unflatten_dict({p: np.empty(s, np.uint8) for p, s in hf.model_shapes(cfg).items()})
    stacked = cfg.scan_layers
  else:
    wanted = abstract
    stacked = has_stacked_layers(_plain_tree(abstract))
  why = param_trees.structure_difference(traverse_util.unflatten_dict({p: np.empty(s, np.uint8) for p, s in shapes.items()}),
                              wanted, "the model")
  if why:
    raise ConversionError(f"{ckpt.directory} holds another model than the one asked for {why}")
  by_path = {p: src for src in sources for p in src.flan_paths}
  # Target leaves in the order of their T5X source, so that a scanned T5X array feeds all its
  # layers in a row and is then dropped.
  if abstract is None:
    targets = [(p, None) for p in sorted(shapes)]
    if stacked:
      targets = [(p, None) for p in _stacked_paths(shapes)]
  else:
    targets = _target_leaves(abstract)

  def sources_of(path):
    if "layers" in path:
      at = path.index("layers")
      n = cfg.num_encoder_layers if path[0] == "encoder" else cfg.num_decoder_layers
      return [path[:at] + (f"layers_{i}",) + path[at + 1:] for i in range(n)]
    return [path]
  order = {src.t5x_name: i for i, src in enumerate(sources)}
  targets.sort(key=lambda t: (order[by_path[sources_of(t[0])[0]].t5x_name], t[0]))
  remaining = {}
  for path, _ in targets:
    for p in sources_of(path):
      remaining[by_path[p].t5x_name] = remaining.get(by_path[p].t5x_name, 0) + 1
  cache: dict[str, list[np.ndarray]] = {}
  out = {}
  for path, leaf in targets:
    parts = []
    for p in sources_of(path):
      src = by_path[p]
      if src.t5x_name not in cache:
        cache[src.t5x_name] = _per_layer(ckpt.read("target/" + src.t5x_name), src)
      parts.append(cache[src.t5x_name][src.flan_paths.index(p)])
      remaining[src.t5x_name] -= 1
      if not remaining[src.t5x_name]:
        del cache[src.t5x_name]
    arr = parts[0] if len(parts) == 1 and "layers" not in path else np.stack(parts)
    out[path] = place(arr, leaf) if place is not None else arr
    del parts, arr
  return traverse_util.unflatten_dict(out)


def _plain_tree(tree):
  return param_trees.plain(tree)


def _stacked_paths(shapes: Mapping[tuple[str, ...], Any]) -> list[tuple[str, ...]]:
  out = set()
  for p in shapes:
    out.add(tuple("layers" if re.fullmatch(r"layers_\d+", c) else c for c in p))
  return sorted(out)


def read_moments(ckpt: T5XCheckpoint, cfg) -> tuple[dict, str | None]:
  """({flan_jax unscanned path: {keep key: array}}, None), or ({}, why) when the checkpoint
  holds no Adafactor statistics (another optimizer, or none saved)."""
  states = ckpt.param_states()
  if not states:
    return {}, f"{ckpt.index_path} holds no optimizer state (state/param_states)"
  kinds = sorted({n.rsplit("/", 1)[-1] for n in states})
  if not {"v_row", "v_col", "v"} <= set(kinds):
    return {}, (f"{ckpt.index_path} holds another optimizer's state ({', '.join(kinds[:4])}), not Adafactor's "
                "v_row/v_col/v")
  sources, _ = layout(ckpt, cfg.num_heads)
  moments: dict[tuple[str, ...], dict[str, np.ndarray]] = {}
  for src in sources:
    shape = ckpt.leaves["target/" + src.t5x_name].shape
    plan = optim.factor_plan(shape, src.t5x_axes, name=src.t5x_name)
    all_dims = tuple(range(len(shape)))
    wanted = ({"v_row": tuple(d for d in all_dims if d not in plan.col_dims),
               "v_col": tuple(d for d in all_dims if d not in plan.row_dims)}
              if plan.factored else {"v": all_dims})
    for kind, kept in wanted.items():
      name = f"{src.t5x_name}/{kind}"
      if name not in states:
        continue
      expect = tuple(shape[d] for d in kept)
      if states[name].shape != expect:
        continue  # T5X factored it otherwise (other rules): that accumulator is not carried
      acc = ckpt.read("state/param_states/" + name)
      for i, path in enumerate(src.flan_paths):
        per, dims = acc, kept
        if src.layer_axis is not None:
          per = np.take(acc, i, axis=kept.index(src.layer_axis))
          dims = tuple(d - (d > src.layer_axis) for d in kept if d != src.layer_axis)
        flan_dims, shape_out, at = [], [], 0
        for d, g in enumerate(src.groups):
          if d in dims:
            flan_dims.extend(range(at, at + len(g)))
            shape_out.extend(g)
          at += len(g)
        moments.setdefault(path, {})[optim.keep_key(flan_dims)] = per.reshape(shape_out)
  return moments, None


# ----------------------------------------------------------------------------------------
# `flan-jax convert from-t5x`.


MOMENTS_DIR = "adafactor_moments"


def _moments_tree(moments: Mapping[tuple[str, ...], Mapping[str, np.ndarray]]) -> dict:
  return traverse_util.unflatten_dict({path + (k,): v for path, d in moments.items() for k, v in d.items()})


def moments_from_tree(tree: Mapping) -> dict:
  out: dict = {}
  for path, v in traverse_util.flatten_dict(dict(tree)).items():
    out.setdefault(path[:-1], {})[path[-1]] = np.asarray(v)
  return out


def model_record(path: str):
  """The model record of a T5X checkpoint: the model its shapes give, no vocabulary (T5X
  checkpoints carry none), its step."""
  ckpt = open_checkpoint(path)
  cfg, _ = infer_config(ckpt)
  return record.ModelRecord(EncoderDecoder, cfg, None, 0, ckpt.index_path, ckpt.step)
