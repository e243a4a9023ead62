"""A checkpoint ready to decode: its model on a mesh with its parameters (`load_decoder`) and the
vocabulary to read and write text with (`choose_vocabulary`); what `flan-jax infer`, `generate`
and `eval` share."""
from __future__ import annotations

import os
from typing import Any

import seqio

from flan_jax import models
from flan_jax.checkpointing import checkpoints
from flan_jax.core import partitioning
from flan_jax.inference import decoding
from flan_jax.models import record
from flan_jax.tasks import vocab as default_vocab


def load_decoder(checkpoint_path: str, model_config: Any = None,
                 mesh: partitioning.MeshConfig = partitioning.MeshConfig()):
  """(SequenceDecoder, params on its shardings, model record) for a checkpoint.

  The model is the checkpoint's recorded one (`model.json`, or an old run's config.gin)
  unless `model_config` is given; the record's vocabulary comes along either way."""
  checkpoints.params_item(checkpoint_path)  # "no such directory" / "no checkpoint in" first
  if model_config is None:
    rec = checkpoints.read_model_record(checkpoint_path)
  else:
    try:
      vocab = checkpoints.read_model_record(checkpoint_path)
      vocab_file, extra_ids = vocab.vocabulary_file, vocab.extra_ids
    except record.RecordError:
      vocab_file, extra_ids = None, 0
    rec = record.ModelRecord(models.family_for(model_config), model_config, vocab_file, extra_ids, "gin")
  model, _ = models.build_model(rec.config)
  decoder = decoding.SequenceDecoder(model, partitioning.make_mesh(mesh))
  abstract = decoder.abstract_params()
  checkpoints.check_params_structure(checkpoint_path, abstract, f"the {rec.family.name} model of {rec.source}")
  params = checkpoints.load_params(checkpoint_path, abstract)
  return decoder, params, rec


def choose_vocabulary(rec: record.ModelRecord, override=None):
  """The vocabulary to encode/decode with: `override` (a path or a seqio vocabulary) when
  given, else the checkpoint's recorded one, else the shipped default. A vocabulary larger
  than the model's embedding, or an override whose size differs from the recorded
  vocabulary, is an error."""
  recorded = rec.vocabulary()
  if override is None:
    if recorded is not None:
      vocab, where = recorded, f"the vocabulary recorded in {rec.source}"
    elif not rec.source.endswith(".gin"):  # model.json, or a T5X checkpoint (which carries none)
      why = " (T5X checkpoints carry none)" if not rec.source.endswith(record.RECORD_FILE) else ""
      raise ValueError(f"{rec.source} records no vocabulary{why}; pass the model's SentencePiece file "
                       "(--vocab for generate and infer, VOCABULARY_FILE for eval)")
    else:  # a run from before model.json: the quickstart's shipped vocabulary
      vocab, where = default_vocab.default_vocabulary(), "the shipped default vocabulary"
  else:
    if isinstance(override, str):
      if not os.path.isfile(override):
        raise ValueError(f"vocabulary file not found: {override}")
      override = seqio.SentencePieceVocabulary(override, extra_ids=rec.extra_ids)
    vocab, where = override, f"the vocabulary {getattr(override, 'sentencepiece_model_file', override)}"
    if recorded is not None and recorded.vocab_size != vocab.vocab_size:
      raise ValueError(f"{where} has {vocab.vocab_size} ids but the checkpoint's recorded vocabulary "
                       f"({rec.vocabulary_file}) has {recorded.vocab_size}")
  if vocab.vocab_size > rec.config.vocab_size:
    raise ValueError(f"{where} has {vocab.vocab_size} ids but the model only {rec.config.vocab_size}; "
                     "pass the checkpoint's own SentencePiece model with --vocab")
  return vocab


def seqio_vocabulary(task_name: str):
  """The vocabulary of a task's targets."""
  return seqio.get_mixture_or_task(task_name).output_features["targets"].vocabulary
