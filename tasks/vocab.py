"""The default vocabulary: a small SentencePiece model shipped with the package.

`tasks/data/flan_jax_spm.model` (unigram, 2048 pieces, T5 ids pad=0 eos=1 unk=2, no bos,
byte fallback so any text encodes, newline kept as its own piece, digits split) is
built by `python -m flan_jax.tasks.build_vocab` from the embedded tasks' text; nothing is
downloaded. Real Flan-T5 checkpoints need their own vocabulary (T5's 32k model) instead.
"""
from __future__ import annotations

import functools
import pathlib

import seqio

DEFAULT_SPM_PATH = pathlib.Path(__file__).parent / "data" / "flan_jax_spm.model"
DEFAULT_EXTRA_IDS = 0
PAD_ID, EOS_ID, UNK_ID = 0, 1, 2


@functools.cache
def default_vocabulary(extra_ids: int = DEFAULT_EXTRA_IDS) -> seqio.SentencePieceVocabulary:
  """The shipped SentencePiece vocabulary (one cached object per `extra_ids`)."""
  if not DEFAULT_SPM_PATH.exists():
    raise FileNotFoundError(f"default vocabulary {DEFAULT_SPM_PATH} is missing; rebuild it "
                            "with `python -m flan_jax.tasks.build_vocab`")
  return seqio.SentencePieceVocabulary(str(DEFAULT_SPM_PATH), extra_ids=extra_ids)
