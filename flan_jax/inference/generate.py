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

from flan_jax.inference import decoding, loading
from flan_jax.runtime import gin_utils
from flan_jax.core import partitioning


# What one request may ask for. Decoding allocates a cache of (prompt + generated) positions
# per layer up front, so an unbounded request would exhaust the host before the first token;
# these bounds keep a generate call within a few GiB for the models flan_jax ships (and far
# above the paper's 2,048-token inputs and 512-token targets).
MAX_DECODE_LEN = 4096
MAX_INPUT_LENGTH = 8192


def check_request(max_decode_len: int, max_input_length: int) -> None:
  """Refuses, at once and naming the limit, a request beyond what generate serves."""
  if not 1 <= max_decode_len <= MAX_DECODE_LEN:
    raise ValueError(f"--max_decode_len={max_decode_len}: give 1 to {MAX_DECODE_LEN} (generated tokens per prompt)")
  if not 1 <= max_input_length <= MAX_INPUT_LENGTH:
    raise ValueError(f"--max_input_length={max_input_length}: give 1 to {MAX_INPUT_LENGTH} (prompt tokens)")


def _utf8(prompt: str, where: str) -> str:
  """The prompt, if it is text: arguments that are not valid UTF-8 reach Python as lone
  surrogates, which the tokenizer cannot take."""
  try:
    prompt.encode("utf-8")
  except UnicodeEncodeError as e:
    raise ValueError(f"{where} is not valid UTF-8 text (byte {prompt[e.start].encode('utf-8', 'surrogateescape')!r} "
                     f"at character {e.start})") from None
  return prompt


def _bucket(n: int) -> int:
  """Prompt length padded to a power of two (>= 16): few shapes, few compilations."""
  return max(16, 1 << (max(n, 1) - 1).bit_length())


class Generator:
  """A checkpoint, its vocabulary and decoding settings: text in, text out."""

  def __init__(self, checkpoint: str, config: decoding.DecodeConfig, vocabulary=None, seed: int = 0,
               max_input_length: int = 2048):
    """`vocabulary`: None (the checkpoint's recorded one), a SentencePiece file or a seqio vocabulary.
    `max_input_length`: the most prompt tokens (EOS included) a prompt may have; longer ones are
    refused, naming the limit."""
    check_request(config.max_decode_len, max_input_length)
    self.decoder, self.params, self.record = loading.load_decoder(checkpoint, mesh=partitioning.MeshConfig())
    self.vocabulary = loading.choose_vocabulary(self.record, vocabulary)
    self.config, self.seed, self.max_input_length = config, seed, max_input_length

  def complete(self, prompts: Sequence[str], where: str = "prompt") -> list[str]:
    ids = []
    for i, p in enumerate(prompts):
      label = f"{where} {i + 1}" if len(prompts) > 1 else where
      row = list(self.vocabulary.encode(_utf8(p, label))) + [decoding.EOS_ID]
      if len(row) > self.max_input_length:
        raise ValueError(f"{label} is {len(row)} tokens; --max_input_length is {self.max_input_length} (at most "
                         f"{MAX_INPUT_LENGTH}): shorten it or raise the limit")
      ids.append(row)
    inputs = np.zeros((len(ids), _bucket(max(map(len, ids)))), np.int32)
    for i, row in enumerate(ids):
      inputs[i, :len(row)] = row
    out = self.decoder.decode(self.params, inputs, self.config, rng=self.seed)
    self.seed += 1  # a new sample each call when sampling
    return [decoding.detokenize(self.vocabulary, row, self.config.eos_id) for row in out.tokens]


def _lines(stream) -> Iterable[tuple[int, str]]:
  """(line number, text) of the non-empty lines of a stream, read as bytes where it has them
  (stdin) so that a line that is not UTF-8 is refused naming its number."""
  for number, raw in enumerate(getattr(stream, "buffer", stream), 1):
    try:
      line = raw.decode("utf-8") if isinstance(raw, bytes) else _utf8(raw, f"stdin line {number}")
    except UnicodeDecodeError as e:
      raise ValueError(f"stdin line {number} is not valid UTF-8 text (byte {raw[e.start:e.start + 1]!r} at "
                       f"byte {e.start})") from None
    line = line.rstrip("\r\n")
    if line.strip():
      yield number, line


def main(argv: Sequence[str] | None = None) -> int:
  from flan_jax.runtime import cli_args
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
  check_request(args.max_decode_len, args.max_input_length)  # before the checkpoint is read
  prompts = [_utf8(p, f"prompt {i + 1}") for i, p in enumerate(args.prompts)]
  generator = Generator(args.checkpoint, config, args.vocab, seed=args.seed, max_input_length=args.max_input_length)
  show = lambda text: print(text.replace("\n", "\\n"), flush=True)
  if prompts:
    for completion in generator.complete(prompts):
      show(completion)
  if args.interactive:
    if sys.stdin.isatty():
      print("flan-jax generate: one prompt per line, Ctrl-D to end", file=sys.stderr)
    for number, prompt in _lines(sys.stdin):
      show(generator.complete([prompt], where=f"stdin line {number}")[0])
  return 0


if __name__ == "__main__":
  sys.exit(main())
