"""`flan-jax generate`: complete prompts with a checkpoint.

    flan-jax generate --checkpoint /tmp/flan_jax_quickstart "Translate to German: good morning"
    flan-jax generate --checkpoint CKPT --interactive          # one prompt per line until EOF
    flan-jax generate --checkpoint CKPT --num_beams 4 --vocab t5.spm.model "PROMPT" "ANOTHER"

Each completion is printed on its own line (newlines inside it escaped as \\n). The model
and its vocabulary come from the checkpoint's `model.json` (`flan-jax train` and `convert
from-hf` record both); `--vocab` names another SentencePiece model of the same size.
Prompts get EOS appended, as the tasks' inputs have.
"""
from __future__ import annotations

import sys
from typing import Iterable, Sequence

import numpy as np

from flan_jax import decoding, gin_utils, infer, partitioning


def _bucket(n: int) -> int:
  """Prompt length padded to a power of two (>= 16): few shapes, few compilations."""
  return max(16, 1 << (max(n, 1) - 1).bit_length())


class Generator:
  """A checkpoint, its vocabulary and decoding settings: text in, text out."""

  def __init__(self, checkpoint: str, config: decoding.DecodeConfig, vocabulary=None, seed: int = 0):
    """`vocabulary`: None (the checkpoint's recorded one), a SentencePiece file or a seqio vocabulary."""
    self.decoder, self.params, self.record = infer.load_decoder(checkpoint, mesh=partitioning.MeshConfig())
    self.vocabulary = infer.choose_vocabulary(self.record, vocabulary)
    self.config, self.seed = config, seed

  def complete(self, prompts: Sequence[str]) -> list[str]:
    ids = [list(self.vocabulary.encode(p)) + [decoding.EOS_ID] for p in prompts]
    inputs = np.zeros((len(ids), _bucket(max(map(len, ids)))), np.int32)
    for i, row in enumerate(ids):
      inputs[i, :len(row)] = row
    out = self.decoder.decode(self.params, inputs, self.config, rng=self.seed)
    self.seed += 1  # a new sample each call when sampling
    return [decoding.detokenize(self.vocabulary, row, self.config.eos_id) for row in out.tokens]


def _lines(stream) -> Iterable[str]:
  for line in stream:
    line = line.rstrip("\n")
    if line.strip():
      yield line


def main(argv: Sequence[str] | None = None) -> int:
  from flan_jax import cli_args
  parser = cli_args.generate_parser()
  args = parser.parse_args(argv)
  if not args.prompts and not args.interactive:
    parser.error("give a PROMPT or --interactive")
  gin_utils.set_up_process()
  # As its flags say (and as transformers' generate): greedy unless --num_beams > 1 or --temperature > 0.
  # infer/eval keep T5X's default decode (beam search with one beam for encoder-decoder models).
  config = decoding.DecodeConfig(max_decode_len=args.max_decode_len, num_beams=args.num_beams, alpha=args.alpha,
                                 temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                                 search="greedy" if args.num_beams == 1 else "beam")
  # RecordError, CheckpointError and a vocabulary mismatch are ValueErrors: `flan-jax` prints one line.
  generator = Generator(args.checkpoint, config, args.vocab, seed=args.seed)
  show = lambda text: print(text.replace("\n", "\\n"), flush=True)
  if args.prompts:
    for completion in generator.complete(args.prompts):
      show(completion)
  if args.interactive:
    if sys.stdin.isatty():
      print("flan-jax generate: one prompt per line, Ctrl-D to end", file=sys.stderr)
    for prompt in _lines(sys.stdin):
      show(generator.complete([prompt])[0])
  return 0


if __name__ == "__main__":
  sys.exit(main())
