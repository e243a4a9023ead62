"""Hugging Face interop for T5 v1.1 / Flan-T5: `flan-jax convert from-hf` and `to-hf`.

A Hugging Face directory is `config.json` plus `model.safetensors` (or shards listed
in `model.safetensors.index.json`). We read safetensors only and never unpickle:
`pytorch_model.bin` is a pickle, and loading one can run arbitrary code.

Layouts. HF `nn.Linear.weight` is [out, in]; our kernels are [in, out] with heads
split out: q/k/v [H*K, D] <-> [D, H, K], o [D, H*K] <-> [H, K, D]. The relative
position table [buckets, H] lives in block 0 of each HF stack and is [H, buckets]
here. `shared.weight` is the token embedding; `{encoder,decoder}.embed_tokens.weight`
are tied aliases of it.

Output head. T5 v1.1 / Flan-T5 have a separate, unscaled head (`lm_head.weight`,
our `decoder/logits_dense/kernel`); the original T5 ties it to the embedding and
scales the decoder output by D**-0.5 (our `logits_via_embedding=True`). Which one a
config means: `scale_decoder_outputs` when present (transformers >= 5, which always
reports `tie_word_embeddings: true`), else `tie_word_embeddings` (default true).
transformers >= 5 saves an unscaled model whose head was never untied without
`lm_head.weight`; it loads that head as `shared.weight`, and so do we.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any, Iterator, Mapping

import numpy as np
from flax import traverse_util

from flan_jax.models.family import stack_layers, unstack_layers
from flan_jax.models.t5 import T5Config, Transformer

PyTree = Any
Layout = str  # "same" | "transpose" | "qkv" | "out"

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
SPM_FILE = "spiece.model"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
_PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_ARCHITECTURES = ("T5ForConditionalGeneration", "MT5ForConditionalGeneration")
# Keys transformers itself ignores when loading T5ForConditionalGeneration.
_IGNORED_KEYS = ("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",)
_TIED_ALIASES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")

# Our MLP activation name <-> the HF activation it equals exactly.
_ACT_TO_HF = {"relu": "relu", "gelu": "gelu_new", "silu": "silu"}
_ACT_FROM_HF = {"relu": "relu", "gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "silu": "silu", "swish": "silu"}


class ConversionError(ValueError):
  """A checkpoint or config that cannot be converted; the message names what and where."""


# ----------------------------------------------------------------------------------------
# Configs.


def _feed_forward_from_hf(proj: str, source: str) -> tuple[str, ...]:
  parts = proj.split("-")
  gated = len(parts) == 2 and parts[0] == "gated"
  if len(parts) > 2 or (len(parts) == 2 and not gated):
    raise ConversionError(f"{source}: feed_forward_proj={proj!r} is not 'ACT' or 'gated-ACT'")
  act = "gelu_new" if proj == "gated-gelu" else parts[-1]  # transformers' own special case
  if act not in _ACT_FROM_HF:
    hint = " (HF 'gelu' is the exact erf GELU; T5 v1.1 uses 'gated-gelu', the tanh one)" if act == "gelu" else ""
    raise ConversionError(f"{source}: feed_forward_proj={proj!r} is not supported{hint}; supported: "
                          "'relu', 'gelu_new', 'silu', 'gated-gelu', 'gated-silu', 'gated-relu'")
  return (_ACT_FROM_HF[act], "linear") if gated else (_ACT_FROM_HF[act],)


def _feed_forward_to_hf(activations: tuple[str, ...]) -> str:
  if len(activations) == 1 and activations[0] in _ACT_TO_HF:
    return _ACT_TO_HF[activations[0]]
  if len(activations) == 2 and activations[1] == "linear" and activations[0] in _ACT_TO_HF:
    return "gated-gelu" if activations[0] == "gelu" else f"gated-{_ACT_TO_HF[activations[0]]}"
  raise ConversionError(f"T5Config.mlp_activations={activations!r} has no Hugging Face T5 equivalent; "
                        "use ('gelu', 'linear'), ('silu', 'linear'), ('relu', 'linear') or ('relu',)")


_INT_FIELDS = ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads", "num_decoder_layers",
               "relative_attention_num_buckets", "relative_attention_max_distance")
_FLOAT_FIELDS = ("dropout_rate", "layer_norm_epsilon")
_BOOL_FIELDS = ("tie_word_embeddings", "scale_decoder_outputs", "is_encoder_decoder", "is_decoder")


def _check_field_types(hf_config: Mapping[str, Any], source: str) -> None:
  """Names the first config.json field (and the file) whose JSON type is wrong, e.g.
  `"d_model": "128"`; optional fields may be absent or null."""
  def bad(key, want):
    value = hf_config[key]
    return ConversionError(f"{source}: field {key!r} must be {want}, got {value!r} "
                           f"({type(value).__name__})")
  for key in _INT_FIELDS:
    value = hf_config.get(key)
    if value is None and key == "num_decoder_layers":
      continue
    if key in hf_config and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
      raise bad(key, "a positive integer")
  for key in _FLOAT_FIELDS:
    value = hf_config.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
      raise bad(key, "a number")
  for key in _BOOL_FIELDS:
    if hf_config.get(key) is not None and not isinstance(hf_config[key], bool):
      raise bad(key, "true or false")
  if hf_config.get("feed_forward_proj") is not None and not isinstance(hf_config["feed_forward_proj"], str):
    raise bad("feed_forward_proj", "a string such as 'gated-gelu'")


def config_from_hf(hf_config: Mapping[str, Any], source: str = CONFIG_FILE) -> T5Config:
  """T5Config for a Hugging Face T5 `config.json` (as a dict); `source` names it in errors."""
  if not isinstance(hf_config, Mapping):
    raise ConversionError(f"{source}: expected a JSON object, got {type(hf_config).__name__}")
  model_type = hf_config.get("model_type")
  if model_type not in ("t5", "mt5"):
    raise ConversionError(f"{source}: model_type={model_type!r}; only 't5' and 'mt5' (T5 v1.1, Flan-T5, mT5) "
                          "are supported")
  unsupported = [a for a in hf_config.get("architectures") or [] if a not in _ARCHITECTURES]
  if unsupported:
    raise ConversionError(f"{source}: architectures={unsupported}; only {list(_ARCHITECTURES)} "
                          "(encoder, decoder and output head) can be converted")
  if not hf_config.get("is_encoder_decoder", True) or hf_config.get("is_decoder", False):
    raise ConversionError(f"{source}: is_encoder_decoder must be true and is_decoder false")
  required = ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads")
  missing = [k for k in required if k not in hf_config]
  if missing:
    raise ConversionError(f"{source}: missing field(s) {missing}")
  _check_field_types(hf_config, source)
  if "scale_decoder_outputs" in hf_config:
    scaled = bool(hf_config["scale_decoder_outputs"])
  else:
    scaled = bool(hf_config.get("tie_word_embeddings", True))
  num_layers = hf_config["num_layers"]
  return T5Config(
      vocab_size=hf_config["vocab_size"],
      emb_dim=hf_config["d_model"],
      num_heads=hf_config["num_heads"],
      num_encoder_layers=num_layers,
      num_decoder_layers=hf_config.get("num_decoder_layers") or num_layers,
      head_dim=hf_config["d_kv"],
      mlp_dim=hf_config["d_ff"],
      mlp_activations=_feed_forward_from_hf(hf_config.get("feed_forward_proj", "relu"), source),
      dropout_rate=float(hf_config.get("dropout_rate", 0.1)),
      logits_via_embedding=scaled,
      relative_attention_num_buckets=hf_config.get("relative_attention_num_buckets", 32),
      relative_attention_max_distance=hf_config.get("relative_attention_max_distance", 128),
      layer_norm_epsilon=float(hf_config.get("layer_norm_epsilon", 1e-6)),
  )


def config_to_hf(cfg: T5Config) -> dict[str, Any]:
  """`config.json` contents for a T5ForConditionalGeneration equal to `cfg`."""
  if cfg.relpos_per_layer:
    raise ConversionError("the model has a relative-position table per layer (T5X scalable_t5 / umT5); "
                          "T5ForConditionalGeneration shares one per stack, so it cannot hold this model")
  return {
      "architectures": ["T5ForConditionalGeneration"],
      "model_type": "t5",
      "vocab_size": cfg.vocab_size,
      "d_model": cfg.emb_dim,
      "d_kv": cfg.head_dim,
      "d_ff": cfg.mlp_dim,
      "num_layers": cfg.num_encoder_layers,
      "num_decoder_layers": cfg.num_decoder_layers,
      "num_heads": cfg.num_heads,
      "relative_attention_num_buckets": cfg.relative_attention_num_buckets,
      "relative_attention_max_distance": cfg.relative_attention_max_distance,
      "dropout_rate": cfg.dropout_rate,
      "layer_norm_epsilon": cfg.layer_norm_epsilon,
      "feed_forward_proj": _feed_forward_to_hf(cfg.mlp_activations),
      # Both spellings: transformers < 5 reads the first, >= 5 the second.
      "tie_word_embeddings": cfg.logits_via_embedding,
      "scale_decoder_outputs": cfg.logits_via_embedding,
      "is_encoder_decoder": True,
      "initializer_factor": 1.0,
      "use_cache": True,
      "decoder_start_token_id": 0,
      "pad_token_id": 0,
      "eos_token_id": 1,
  }


# ----------------------------------------------------------------------------------------
# Parameters.


def _key_map(cfg: T5Config) -> Iterator[tuple[str, tuple[str, ...], Layout]]:
  """(HF key, our parameter path, layout) for every tensor of the model."""
  yield "shared.weight", ("token_embedder", "embedding"), "same"
  wi = ["wi"] if len(cfg.mlp_activations) == 1 else [f"wi_{i}" for i in range(len(cfg.mlp_activations))]
  sublayers = {
      "encoder": [("pre_attention_layer_norm", "attention", "SelfAttention"),
                  ("pre_mlp_layer_norm", "mlp", "DenseReluDense")],
      "decoder": [("pre_self_attention_layer_norm", "self_attention", "SelfAttention"),
                  ("pre_cross_attention_layer_norm", "encoder_decoder_attention", "EncDecAttention"),
                  ("pre_mlp_layer_norm", "mlp", "DenseReluDense")],
  }
  for stack, num_layers in (("encoder", cfg.num_encoder_layers), ("decoder", cfg.num_decoder_layers)):
    yield (f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
           (stack, "relpos_bias", "rel_embedding"), "transpose")
    for i in range(num_layers):
      for j, (norm, block, hf_block) in enumerate(sublayers[stack]):
        hf, ours = f"{stack}.block.{i}.layer.{j}", (stack, f"layers_{i}")
        yield f"{hf}.layer_norm.weight", ours + (norm, "scale"), "same"
        if hf_block == "DenseReluDense":
          for name in wi + ["wo"]:
            yield f"{hf}.{hf_block}.{name}.weight", ours + (block, name, "kernel"), "transpose"
        else:
          for hf_name, name in zip("qkvo", ("query", "key", "value", "out")):
            yield (f"{hf}.{hf_block}.{hf_name}.weight", ours + (block, name, "kernel"),
                   "out" if hf_name == "o" else "qkv")
    yield f"{stack}.final_layer_norm.weight", (stack, f"{stack}_norm", "scale"), "same"
  if not cfg.logits_via_embedding:
    yield "lm_head.weight", ("decoder", "logits_dense", "kernel"), "transpose"


def _hf_shape(shape: tuple[int, ...], layout: Layout) -> tuple[int, ...]:
  if layout == "same":
    return tuple(shape)
  if layout == "transpose":
    return tuple(reversed(shape))
  if layout == "qkv":  # [D, H, K] -> [H*K, D]
    return (shape[1] * shape[2], shape[0])
  return (shape[2], shape[0] * shape[1])  # out: [H, K, D] -> [D, H*K]


def _to_ours(w: np.ndarray, layout: Layout, shape: tuple[int, ...]) -> np.ndarray:
  if layout == "same":
    return w
  return np.ascontiguousarray(w.T).reshape(shape)  # transpose, qkv and out alike


def _to_hf(kernel: np.ndarray, layout: Layout) -> np.ndarray:
  if layout == "same":
    return kernel
  if layout == "qkv":
    kernel = kernel.reshape(kernel.shape[0], -1)
  elif layout == "out":
    kernel = kernel.reshape(-1, kernel.shape[-1])
  return np.ascontiguousarray(kernel.T)


@functools.lru_cache(maxsize=8)
def model_shapes(cfg: T5Config) -> dict[tuple[str, ...], tuple[int, ...]]:
  """Shapes of `Transformer(cfg)`'s parameters by path, unscanned layout (abstract init, no
  memory); a `scan_layers` model is converted through this layout and stacked afterwards."""
  import dataclasses
  cfg = dataclasses.replace(cfg, scan_layers=False)
  import flax.linen as nn
  import jax
  import jax.numpy as jnp

  tokens = jnp.ones((1, 2), jnp.int32)
  abstract = jax.eval_shape(lambda: Transformer(cfg).init(jax.random.PRNGKey(0), tokens, tokens))
  flat = traverse_util.flatten_dict(nn.meta.unbox(abstract["params"]))
  return {path: tuple(x.shape) for path, x in flat.items()}


def _where(key: str, key_files: Mapping[str, str] | None, default: str) -> str:
  return (key_files or {}).get(key, default)


def params_from_hf(state_dict: Mapping[str, np.ndarray], cfg: T5Config, *,
                   key_files: Mapping[str, str] | None = None, source: str = "state dict") -> PyTree:
  """Our parameter tree (nested dicts of float32 numpy arrays) from an HF T5 state dict.

  Every tensor the model needs must be present and every key must be used; errors
  name the key and, through `key_files` (key -> file), the file holding it.
  """

  shapes = model_shapes(cfg)
  remaining = dict(state_dict)
  shared = remaining.get("shared.weight")
  for alias in _TIED_ALIASES:
    if alias not in remaining:
      continue
    w = remaining.pop(alias)
    if shared is None:
      shared = remaining["shared.weight"] = w
    elif not np.array_equal(w, shared):
      raise ConversionError(f"{alias} in {_where(alias, key_files, source)} differs from shared.weight; "
                            "flan_jax T5 shares one embedding between encoder, decoder and the input")
  for key in _IGNORED_KEYS:
    remaining.pop(key, None)
  head = remaining.get("lm_head.weight")
  if cfg.logits_via_embedding and head is not None:
    remaining.pop("lm_head.weight")
    if shared is not None and not np.array_equal(head, shared):
      raise ConversionError(f"lm_head.weight in {_where('lm_head.weight', key_files, source)} differs from "
                            "shared.weight but the config ties them (scaled output, original T5); set "
                            "tie_word_embeddings=false in config.json if the head is meant to be separate")
  if not cfg.logits_via_embedding and head is None and shared is not None:
    remaining["lm_head.weight"] = shared  # untied config, head saved as an alias of shared

  flat, missing = {}, []
  for key, path, layout in _key_map(cfg):
    if key not in remaining:
      missing.append(key)
      continue
    w = remaining.pop(key)
    if path not in shapes:
      raise ConversionError(f"internal: {key} maps to {'/'.join(path)}, which Transformer(cfg) lacks")
    want = _hf_shape(shapes[path], layout)
    if tuple(w.shape) != want:
      raise ConversionError(f"{key} in {_where(key, key_files, source)} has shape {tuple(w.shape)}; "
                            f"config.json implies {want}")
    flat[path] = _to_ours(np.asarray(w, np.float32), layout, shapes[path])
  if missing:
    raise ConversionError(f"{source} lacks {len(missing)} tensor(s) the config requires: "
                          f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
  if remaining:
    unexpected = sorted(remaining)
    raise ConversionError(
        f"unexpected tensor(s) {', '.join(unexpected[:8])}{' ...' if len(unexpected) > 8 else ''} in "
        f"{_where(unexpected[0], key_files, source)}: config.json does not describe them "
        "(wrong num_layers, feed_forward_proj or architecture?)")
  if set(flat) != set(shapes):
    raise ConversionError(f"internal: converted parameters miss {sorted(set(shapes) - set(flat))}")
  tree = traverse_util.unflatten_dict(flat)
  return stack_layers(tree) if cfg.scan_layers else tree


def _plain_dicts(tree: Any) -> Any:
  return {k: _plain_dicts(v) for k, v in tree.items()} if isinstance(tree, Mapping) else np.asarray(tree)


def params_to_hf(params: PyTree, cfg: T5Config) -> dict[str, np.ndarray]:
  """HF T5ForConditionalGeneration state dict (numpy) from our parameter tree."""
  import flax.linen as nn

  params = nn.meta.unbox(params)
  if isinstance(params, Mapping) and set(params) == {"params"}:
    params = params["params"]
  params = unstack_layers(_plain_dicts(params))  # a scan_layers model: layers_i, as HF numbers its blocks
  flat = {path: np.asarray(x) for path, x in traverse_util.flatten_dict(dict(params)).items()}
  shapes = model_shapes(cfg)
  if set(flat) != set(shapes):
    extra, lacking = sorted(set(flat) - set(shapes)), sorted(set(shapes) - set(flat))
    raise ConversionError(f"parameters do not match T5Config: missing {['/'.join(p) for p in lacking][:8]}, "
                          f"unexpected {['/'.join(p) for p in extra][:8]}")
  out = {}
  for key, path, layout in _key_map(cfg):
    if tuple(flat[path].shape) != shapes[path]:
      raise ConversionError(f"{'/'.join(path)} has shape {flat[path].shape}; T5Config implies {shapes[path]}")
    out[key] = _to_hf(flat[path], layout)
  return out


# ----------------------------------------------------------------------------------------
# Files.


def _load_safetensors(path: str) -> dict[str, np.ndarray]:
  """The tensors of one safetensors file; a truncated or corrupt file is a ConversionError
  naming it."""
  import safetensors.numpy
  try:
    try:
      return safetensors.numpy.load_file(path)
    except TypeError:  # a dtype numpy lacks (bfloat16): read through safetensors' JAX loader on the host
      import jax
      import safetensors.flax
      with jax.default_device(jax.devices("cpu")[0]):
        return {k: np.asarray(v) for k, v in safetensors.flax.load_file(path).items()}
  except Exception as e:  # pylint: disable=broad-except  (SafetensorError, OSError, ...)
    if isinstance(e, ConversionError):
      raise
    why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise ConversionError(f"{path}: not a readable safetensors file, truncated or corrupt? ({why}); "
                          "download or save it again") from e


def read_json(path: str) -> Any:
  """A JSON file's content; invalid JSON is a ConversionError naming the file and position."""
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise ConversionError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from e
  except UnicodeDecodeError as e:
    raise ConversionError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e


def read_hf_dir(src_dir: str) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, str]]:
  """(config dict, state dict, key -> file) of a Hugging Face T5 directory; safetensors only."""
  config_path = os.path.join(src_dir, CONFIG_FILE)
  if not os.path.isfile(config_path):
    raise ConversionError(f"{src_dir} has no {CONFIG_FILE}; expected a Hugging Face model directory "
                          "(save_pretrained output)")
  hf_config = read_json(config_path)
  if not isinstance(hf_config, dict):
    raise ConversionError(f"{config_path}: expected a JSON object, got {type(hf_config).__name__}")
  index_path = os.path.join(src_dir, WEIGHTS_INDEX_FILE)
  if os.path.isfile(index_path):
    index = read_json(index_path)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not weight_map or not isinstance(weight_map, dict):
      raise ConversionError(f"{index_path} has no weight_map")
    files = sorted(set(weight_map.values()))
  elif os.path.isfile(os.path.join(src_dir, WEIGHTS_FILE)):
    weight_map, files = None, [WEIGHTS_FILE]
  else:
    pickles = [f for f in _PICKLE_FILES if os.path.exists(os.path.join(src_dir, f))]
    if pickles:
      raise ConversionError(
          f"{src_dir} holds only {pickles[0]}, a pickle; flan-jax never unpickles checkpoints because "
          "loading a pickle can execute arbitrary code. Convert it to safetensors first, in an environment "
          "you trust: python -c \"from transformers import T5ForConditionalGeneration as M; "
          f"M.from_pretrained('{src_dir}').save_pretrained('OUT_DIR', safe_serialization=True)\"")
    raise ConversionError(f"{src_dir} has neither {WEIGHTS_FILE} nor {WEIGHTS_INDEX_FILE}")

  state_dict, key_files = {}, {}
  for name in files:
    path = os.path.join(src_dir, name)
    if not os.path.isfile(path):
      raise ConversionError(f"{index_path} lists {name}, which is missing from {src_dir}")
    for key, w in _load_safetensors(path).items():
      if key in state_dict:
        raise ConversionError(f"{key} appears in both {key_files[key]} and {path}")
      state_dict[key], key_files[key] = w, path
  if weight_map is not None:
    for key, name in weight_map.items():
      if key_files.get(key) != os.path.join(src_dir, name):
        raise ConversionError(f"{index_path} places {key} in {name}, but that file does not hold it")
  return hf_config, state_dict, key_files


def write_hf_dir(dst_dir: str, params: PyTree, cfg: T5Config) -> None:
  """Writes `config.json` + `model.safetensors` loadable by T5ForConditionalGeneration."""
  import safetensors.numpy
  config = config_to_hf(cfg)  # a model HF cannot hold is refused before anything is converted
  state_dict = params_to_hf(params, cfg)
  os.makedirs(dst_dir, exist_ok=True)
  with open(os.path.join(dst_dir, CONFIG_FILE), "w") as f:
    json.dump(config, f, indent=2, sort_keys=True)
    f.write("\n")
  # transformers refuses safetensors files without a `format` entry in the metadata.
  safetensors.numpy.save_file(state_dict, os.path.join(dst_dir, WEIGHTS_FILE), metadata={"format": "pt"})


def write_tokenizer(dst_dir: str, spm_file: str, extra_ids: int) -> None:
  """spiece.model + tokenizer_config.json: what `AutoTokenizer.from_pretrained` needs to build
  T5's tokenizer (ids: the SentencePiece pieces, then `extra_ids` sentinels)."""
  import shutil
  shutil.copyfile(spm_file, os.path.join(dst_dir, SPM_FILE))
  with open(os.path.join(dst_dir, TOKENIZER_CONFIG_FILE), "w") as f:
    json.dump({"tokenizer_class": "T5Tokenizer", "extra_ids": extra_ids, "eos_token": "</s>",
               "unk_token": "<unk>", "pad_token": "<pad>", "model_max_length": 512}, f, indent=2)
    f.write("\n")
