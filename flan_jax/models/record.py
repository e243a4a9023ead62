"""The saved model record: `model.json` (family, config fields, vocabulary) beside a checkpoint.

`flan-jax train` writes it into MODEL_DIR together with a copy of the task's
SentencePiece model (`spiece.model`); `flan-jax convert from-hf` writes both into its
output. Everything that needs to know a checkpoint's model (generate, infer, eval,
`convert to-hf`, INITIAL_CHECKPOINT_PATH checks) reads it back with `read_record`:

    {"format": 1, "family": "decoder_only",
     "config": {"vocab_size": 2048, "emb_dim": 128, ...},
     "vocabulary": {"file": "spiece.model", "extra_ids": 0, "vocab_size": 2048}}

Run directories written before the record existed have only the operative `config.gin`
(converted checkpoints: `model.gin`); `read_record` falls back to reading the model's
bindings from that text, without touching gin's global state.
"""
from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import shutil
from typing import Any

from flan_jax import models
from flan_jax.models.family import HOW_NOT_WHAT, Family, ModelConfig
from flan_jax.runtime import gin_utils

RECORD_FILE = "model.json"
VOCAB_FILE = "spiece.model"
FORMAT = 1


class RecordError(ValueError):
  """A checkpoint path without a readable model record; the message names the path."""


@dataclasses.dataclass(frozen=True)
class ModelRecord:
  family: Family
  config: ModelConfig
  vocabulary_file: str | None  # absolute path of the SentencePiece model, when recorded
  extra_ids: int
  source: str                  # the file this record was read from
  step: int | None = None      # the training step a converted checkpoint records (T5X's)

  def vocabulary(self):
    """The recorded seqio vocabulary, or None when the record names none."""
    if self.vocabulary_file is None:
      return None
    import seqio
    return seqio.SentencePieceVocabulary(self.vocabulary_file, extra_ids=self.extra_ids)


def vocabulary_fields(vocabulary) -> tuple[str | None, int]:
  """(SentencePiece model file, extra_ids) of a seqio vocabulary; (None, 0) for other kinds."""
  path = getattr(vocabulary, "sentencepiece_model_file", None)
  return (path, int(getattr(vocabulary, "extra_ids", 0) or 0)) if path else (None, 0)


def write_record(directory: str, config: ModelConfig, vocabulary_file: str | None = None,
                 extra_ids: int = 0, vocab_size: int | None = None, note: str | None = None,
                 extra: dict[str, Any] | None = None) -> str:
  """Writes DIRECTORY/model.json and copies `vocabulary_file` to DIRECTORY/spiece.model.
  `extra`: further top-level fields (a converted checkpoint's `step` and `source`).
  Returns the record's path."""
  family = models.family_for(config)
  os.makedirs(directory, exist_ok=True)
  record: dict[str, Any] = {"format": FORMAT, "family": family.name, "config": config.to_dict()}
  if vocabulary_file is not None:
    if not os.path.isfile(vocabulary_file):
      raise RecordError(f"vocabulary file {vocabulary_file} does not exist")
    dst = os.path.join(directory, VOCAB_FILE)
    if not (os.path.exists(dst) and os.path.samefile(vocabulary_file, dst)):
      shutil.copyfile(vocabulary_file, dst + ".tmp")
      os.replace(dst + ".tmp", dst)
    record["vocabulary"] = {"file": VOCAB_FILE, "extra_ids": int(extra_ids)}
    if vocab_size is not None:
      record["vocabulary"]["vocab_size"] = int(vocab_size)
  if note:
    record["note"] = note
  record.update({k: v for k, v in (extra or {}).items() if v is not None})
  path = os.path.join(directory, RECORD_FILE)
  with open(path + ".tmp", "w") as f:
    json.dump(record, f, indent=2)
    f.write("\n")
  os.replace(path + ".tmp", path)
  return path


def config_from_dict(family: Family, fields: dict[str, Any], where: str) -> ModelConfig:
  known = {f.name for f in dataclasses.fields(family.config_class)}
  unknown = sorted(set(fields) - known)
  if unknown:
    raise RecordError(f"{where}: {family.config_class.__name__} has no field(s) {unknown}")
  try:
    return family.config_class(**fields)
  except (TypeError, ValueError) as e:
    raise RecordError(f"{where}: {e}") from e


def _parse_record(path: str) -> ModelRecord:
  try:
    with open(path) as f:
      data = json.load(f)
    family = models.get_family(data["family"])
    fields = data["config"]
  except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
    raise RecordError(f"{path}: not a readable model record ({type(e).__name__}: {e})") from e
  config = config_from_dict(family, fields, path)
  vocab = data.get("vocabulary") or {}
  vocab_file = None
  if vocab.get("file"):
    vocab_file = os.path.join(os.path.dirname(path), vocab["file"])
    if not os.path.isfile(vocab_file):
      raise RecordError(f"{path} records the vocabulary {vocab['file']}, which is missing from "
                        f"{os.path.dirname(path)}")
  step = data.get("step")
  return ModelRecord(family, config, vocab_file, int(vocab.get("extra_ids", 0)), path,
                     int(step) if isinstance(step, int) else None)


def candidate_dirs(checkpoint_path: str) -> list[str]:
  """Where a checkpoint's record may be: the path itself, and for a run step directory
  (MODEL_DIR/checkpoints/<step>) its MODEL_DIR."""
  path = os.path.abspath(checkpoint_path)
  run_dir = os.path.dirname(os.path.dirname(path))
  return [path] + ([run_dir] if os.path.basename(os.path.dirname(path)) == "checkpoints" else [])


def read_record(checkpoint_path: str) -> ModelRecord:
  """The model record of a converted checkpoint, a MODEL_DIR or one of its step directories
  (a T5X checkpoint records none: `checkpoints.read_model_record` reads any checkpoint)."""
  if not os.path.isdir(checkpoint_path):
    raise RecordError(f"no such directory: {checkpoint_path}")
  dirs = candidate_dirs(checkpoint_path)
  for directory in dirs:
    if os.path.isfile(os.path.join(directory, RECORD_FILE)):
      return _parse_record(os.path.join(directory, RECORD_FILE))
  for directory in dirs:  # directories written before model.json existed
    for name in ("model.gin", "config.gin"):
      candidate = os.path.join(directory, name)
      if os.path.isfile(candidate):
        with open(candidate) as f:
          family, config = _config_from_gin_text(f.read(), candidate)
        return ModelRecord(family, config, None, 0, candidate)
  raise RecordError(f"no {RECORD_FILE} in {checkpoint_path} (nor config.gin of an older run): cannot tell "
                    "the model; bind the model in gin (e.g. include 'models/t5_1_1/tiny.gin' and set "
                    "evaluate.model_config / infer.model_config = %MODEL_CONFIG)")


# ----------------------------------------------------------------------------------------
# The fallback for old directories: a run's operative config.gin or a converted model.gin.


def _config_from_gin_text(text: str, where: str) -> tuple[Family, ModelConfig]:
  """The family and config a saved gin text binds (literal values and %MACROs only).

  The model's class is the one `train.model_config` (or MODEL_CONFIG) refers to: an
  operative config also lists other configs that were merely constructed at import."""
  stmts = [(k, v) for k, v, _ in gin_utils.gin_statements(text)]
  bound = dict(stmts)
  macros = {k: v for k, v in stmts if gin_utils.MACRO_NAME.fullmatch(k)}

  def value(v: str, depth: int = 0):
    if v.startswith("%") and depth < 10:
      if v[1:] not in macros:
        raise RecordError(f"{where}: macro {v} is not defined")
      return value(macros[v[1:]], depth + 1)
    return ast.literal_eval(v)

  by_class = {f.config_class.__name__: f for f in models.families().values()}
  ref = bound.get("train.model_config", "%MODEL_CONFIG")
  scope = ref[1:] if ref.startswith("%") else ""
  for _ in range(10):
    if ref.startswith("%") and ref[1:] in macros:
      ref = macros[ref[1:]]
  m = re.fullmatch(r"@(?:[\w.]+\.)?(\w+)\(\)", ref)
  if m and m.group(1) in by_class:
    order = [by_class[m.group(1)]]
  else:  # a model.gin of a converted checkpoint binds one class and no reference
    order = [f for name, f in by_class.items() if any(k.split("/")[-1].startswith(name + ".") for k in bound)]
  for family in order:
    cls = family.config_class.__name__
    fields = {f.name for f in dataclasses.fields(family.config_class)}
    kwargs = {}
    for prefix in (f"{cls}.", f"{scope}/{cls}."):
      try:
        kwargs.update({k[len(prefix):]: value(v) for k, v in stmts
                       if k.startswith(prefix) and k[len(prefix):] in fields})
      except (ValueError, SyntaxError) as e:
        raise RecordError(f"{where}: cannot read the {cls} bindings: {e}") from e
    return family, config_from_dict(family, kwargs, where)
  raise RecordError(f"{where} binds no model config ({', '.join(by_class)}); bind evaluate.model_config / "
                    "infer.model_config in gin (e.g. include 'models/t5_1_1/tiny.gin' and set it to "
                    "%MODEL_CONFIG)")


def config_from_gin_file(path: str) -> tuple[Family, ModelConfig]:
  """The family and config a model gin file (gin/models/...) sets, read from its text and its
  includes without touching gin's global state."""
  return _config_from_gin_text(gin_utils.gin_text(path), path)


def check_same_model(model_dir: str, config: ModelConfig) -> None:
  """Before resuming MODEL_DIR: its recorded model must be `config`; the error names the
  family or the first differing fields instead of a checkpoint tree."""
  path = os.path.join(model_dir, RECORD_FILE)
  if not os.path.isfile(path):
    return  # a run from before model.json: the restore itself checks the structure
  saved = _parse_record(path)
  family = models.family_for(config)
  if saved.family.name != family.name:
    diff = f"it holds a {saved.family.name} model, this run is {family.name}"
  else:
    old, new = saved.config.to_dict(), config.to_dict()
    fields = [k for k in new if old.get(k) != new[k] and k not in HOW_NOT_WHAT]
    if not fields:
      return
    diff = ", ".join(f"{k}={old.get(k)!r} there, {new[k]!r} here" for k in fields[:4])
  raise RecordError(f"MODEL_DIR {model_dir} holds another model ({path}: {diff}); use a new MODEL_DIR, or pass "
                    "that run as INITIAL_CHECKPOINT_PATH only if the model is the same")
