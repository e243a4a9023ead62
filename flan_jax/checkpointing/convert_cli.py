"""`flan-jax convert`: from-hf, to-hf and from-t5x. Each reads and checks every input before it
writes, and writes into a new or empty directory (`--overwrite` replaces) that is staged and
renamed into place (`staging`)."""
from __future__ import annotations

import os
import sys
from typing import Any, Sequence

import jax

from flan_jax.checkpointing import checkpoints, hf, param_trees, staging, t5x
from flan_jax.models import record
from flan_jax.models.t5 import EncoderDecoder, T5Config
from flan_jax.runtime import cli_args, gin_utils
from flan_jax import models
from flan_jax.tasks import vocab


def _hf_extra_ids(src_dir: str) -> int:
  """How many T5 sentinel ids (<extra_id_N>) the HF tokenizer adds after the SentencePiece
  pieces: tokenizer_config.json's `extra_ids`, else its sentinel tokens, else none."""
  path = os.path.join(src_dir, hf.TOKENIZER_CONFIG_FILE)
  if not os.path.isfile(path):
    return 0
  tok = hf.read_json(path)
  if not isinstance(tok, dict):
    raise hf.ConversionError(f"{path}: expected a JSON object, got {type(tok).__name__}")
  if isinstance(tok.get("extra_ids"), int):
    return tok["extra_ids"]
  names = [t if isinstance(t, str) else t.get("content", "") for t in tok.get("additional_special_tokens") or []]
  names += [t.get("content", "") for t in (tok.get("added_tokens_decoder") or {}).values() if isinstance(t, dict)]
  return len({n for n in names if n.startswith("<extra_id_")})


def from_hf(src_dir: str, dst_dir: str, *, overwrite: bool = False) -> T5Config:
  """Converts a Hugging Face T5 directory into a flan_jax parameter checkpoint: params/,
  model.json and, when SRC has one, its SentencePiece model as spiece.model. Every input is
  read and checked before DST (new or empty, or `overwrite`) is written, all at once."""
  staging.check_destination(dst_dir, src_dir, overwrite=overwrite)
  hf_config, state_dict, key_files = hf.read_hf_dir(src_dir)
  cfg = hf.config_from_hf(hf_config, source=os.path.join(src_dir, hf.CONFIG_FILE))
  params = hf.params_from_hf(state_dict, cfg, key_files=key_files, source=src_dir)
  spm = os.path.join(src_dir, hf.SPM_FILE)
  if not os.path.isfile(spm):
    spm = None
    print(f"flan-jax convert from-hf: note: {src_dir} has no {hf.SPM_FILE}; the checkpoint records no vocabulary, "
          "so generate/infer/eval need --vocab (the model's SentencePiece file)", file=sys.stderr)
  extra_ids = _hf_extra_ids(src_dir) if spm else 0
  with staging.staged(dst_dir) as tmp:
    param_trees.save_params(tmp, params)
    record.write_record(tmp, cfg, spm, extra_ids=extra_ids, note=f"flan-jax convert from-hf {os.path.abspath(src_dir)}")
  return cfg


def to_hf(src: str, dst_dir: str, *, overwrite: bool = False) -> T5Config:
  """Converts a flan_jax checkpoint (converted params dir, run step or MODEL_DIR) into a Hugging
  Face directory: config.json, model.safetensors and, when recorded, the tokenizer files. DST
  must be new or empty (or `overwrite`); it is written all at once."""
  staging.check_destination(dst_dir, src, overwrite=overwrite)
  checkpoints.params_item(src)  # "no such directory" / "no checkpoint in"
  rec = checkpoints.read_model_record(src)
  if rec.family.name != EncoderDecoder.name:
    raise hf.ConversionError(f"{rec.source} records a {rec.family.name} model; to-hf writes T5ForConditionalGeneration "
                          "(encoder_decoder models) only")
  cfg = rec.config
  hf.config_to_hf(cfg)  # refused before any array is read
  params = checkpoints.load_params(src)
  with staging.staged(dst_dir) as tmp:
    hf.write_hf_dir(tmp, params, cfg)
    if rec.vocabulary_file is not None:
      hf.write_tokenizer(tmp, rec.vocabulary_file, rec.extra_ids)
    elif rec.source.endswith(".gin"):  # a run from before model.json: it trained on the shipped vocabulary
      hf.write_tokenizer(tmp, str(vocab.DEFAULT_SPM_PATH), vocab.DEFAULT_EXTRA_IDS)
  return cfg


def from_t5x(src: str, dst: str, *, vocab: str | None = None, extra_ids: int = 100,
             gin_files: Sequence[str] = (), overwrite: bool = False, say=print) -> Any:
  """Converts a T5X checkpoint into a flan_jax parameter checkpoint in DST: params/, the
  Adafactor moments it carries (adafactor_moments/), model.json (with the step) and, with
  `vocab`, spiece.model. The index and model are checked before anything is read, every array
  is read and converted before DST is written, and DST (new or empty, or `overwrite`) is
  written under a temporary name and renamed when complete."""
  recipe = _recipe_model(gin_files) if gin_files else None
  if vocab is not None and not os.path.isfile(vocab):
    raise hf.ConversionError(f"--vocab {vocab}: no such file")
  staging.check_destination(dst, src, overwrite=overwrite)
  ckpt = t5x.T5XCheckpoint(src)
  staging.check_destination(dst, ckpt.directory, overwrite=overwrite)
  cfg, notes = t5x.infer_config(ckpt, recipe)
  cpu = jax.devices("cpu")[0]
  # Each array goes to a (CPU) jax array as soon as it is read, so the host holds the model
  # once, plus the array in flight.
  params = t5x.read_params(ckpt, cfg, place=lambda x, _: jax.device_put(x, cpu))
  moments, why = t5x.read_moments(ckpt, cfg)
  vocab_note = (f"vocabulary {os.path.abspath(vocab)} (--vocab), extra_ids {extra_ids}" if vocab else
                "no vocabulary: T5X checkpoints carry none; generate/infer/eval need --vocab, training uses the task's")
  with staging.staged(dst) as tmp:
    param_trees.save_params(tmp, params, streaming=True)
    del params
    if moments:
      param_trees.save_params(os.path.join(tmp, t5x.MOMENTS_DIR), t5x._moments_tree(moments))
    record.write_record(tmp, cfg, vocab, extra_ids=extra_ids if vocab else 0,
                        note=f"flan-jax convert from-t5x {ckpt.directory}; {vocab_note}",
                        extra={"step": ckpt.step, "source": {"format": "t5x", "path": ckpt.directory,
                                                             "version": ckpt.version}})
  for note in notes + ([f"Adafactor state not carried: {why}"] if why else []) + (
      [] if vocab else ["no vocabulary recorded (T5X checkpoints carry none): pass --vocab to generate/infer/eval, "
                        "or convert again with --vocab"]):
    say(f"flan-jax convert from-t5x: note: {note}")
  return cfg, ckpt.step


def _recipe_model(gin_files: Sequence[str]):
  """The model a recipe's gin files set (what --gin_file gives from-t5x to check against)."""
  try:
    with gin_utils.parsed(list(gin_files)):
      return models.config_from_gin()
  except FileNotFoundError as e:
    raise hf.ConversionError(f"--gin_file: {e}") from e


def _from_t5x_main(args) -> int:
  """`flan-jax convert from-t5x SRC DST [--vocab F] [--extra_ids N] [--gin_file RECIPE]`."""
  try:
    cfg, step = from_t5x(args.src, args.dst, vocab=args.vocab, extra_ids=args.extra_ids,
                         gin_files=args.gin_file or (), overwrite=args.overwrite,
                         say=lambda m: print(m, file=sys.stderr))
  except ValueError as e:  # ConversionError, CheckpointError, RecordError
    print(f"flan-jax convert from-t5x: error: {e}", file=sys.stderr)
    return 1
  print(f"wrote {args.dst} ({cfg.num_encoder_layers}+{cfg.num_decoder_layers} layers, d_model {cfg.emb_dim}, "
        f"vocab {cfg.vocab_size}, step {step})")
  return 0


def main(argv: list[str]) -> int:
  """`flan-jax convert from-hf SRC DST` / `flan-jax convert to-hf SRC DST`."""
  parser = cli_args.convert_parser()
  args = parser.parse_args(argv)
  if args.command == "from-t5x":
    return _from_t5x_main(args)
  try:
    if args.command == "from-hf":
      cfg = from_hf(args.src, args.dst, overwrite=args.overwrite)
    else:
      cfg = to_hf(args.src, args.dst, overwrite=args.overwrite)
  except ValueError as e:  # ConversionError, CheckpointError
    print(f"flan-jax convert {args.command}: error: {e}", file=sys.stderr)
    return 1
  print(f"wrote {args.dst} ({cfg.num_encoder_layers}+{cfg.num_decoder_layers} layers, d_model {cfg.emb_dim}, "
        f"vocab {cfg.vocab_size})")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
