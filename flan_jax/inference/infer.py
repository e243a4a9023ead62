"""`flan-jax infer`: decode a seqio task or mixture with a checkpoint and write JSONL (like t5x.infer).

    flan-jax infer --gin_file=gin/runs/infer.gin --gin.CHECKPOINT_PATH=/tmp/flan_jax_quickstart \\
        --gin.MIXTURE_OR_TASK_NAME=flan_jax_embedded_heldout --gin.INFER_OUTPUT_DIR=/tmp/infer

Writes INFER_OUTPUT_DIR/<task>.jsonl (a mixture: one file per task), one line per example:
{"task", "index", "inputs", "targets", "prediction", "score"}; texts are decoded with the
task's vocabulary (which must match the one the checkpoint records) and `score` is the
decoder's (log-likelihood, or beam score). The model comes from gin (`infer.model_config`)
or, when unbound, from the checkpoint's `model.json` (flan_jax.models.record).
Decoding settings are `DecodeConfig` bindings (T5X's default: beam search with one beam and
alpha 0.6 for encoder-decoder models, greedy for decoder-only; `DecodeConfig.search='greedy'`).
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Mapping, Sequence

import gin
import jax
import numpy as np

from flan_jax.inference import decoding, loading
from flan_jax.runtime import distributed, gin_utils
from flan_jax.core import partitioning
from flan_jax.tasks import lookup, metrics


def infer_task(decoder: decoding.SequenceDecoder, params, task_name: str, *, split: str, input_length: int,
               batch_size: int, max_examples: int | None, decode_config: decoding.DecodeConfig,
               seed: int = 0) -> list[dict]:
  """Decodes the first `max_examples` examples of a task's split, in fixed-shape batches."""
  import seqio
  task = seqio.get_mixture_or_task(task_name)
  vocab = task.output_features["targets"].vocabulary
  targets_length = max(decode_config.max_decode_len, 1)
  ds = task.get_dataset(sequence_length={"inputs": input_length, "targets": targets_length}, split=split,
                        shuffle=False, num_epochs=1, use_cached=False, try_in_mem_cache=False)
  if max_examples:
    ds = ds.take(max_examples)
  examples = list(ds.as_numpy_iterator())
  rows = []
  for start in range(0, len(examples), batch_size):
    chunk = examples[start:start + batch_size]
    inputs = np.zeros((batch_size, input_length), np.int32)  # fixed shape: one compilation
    for i, ex in enumerate(chunk):
      ids = ex["inputs"][:input_length]
      inputs[i, :len(ids)] = ids
    out = decoder.decode(params, inputs, decode_config, rng=seed + start)
    for i, ex in enumerate(chunk):
      inputs_text = metrics.as_text(ex["inputs_pretokenized"]) if "inputs_pretokenized" in ex else \
          decoding.detokenize(vocab, ex["inputs"])
      targets_text = metrics.as_text(ex["targets_pretokenized"]) if "targets_pretokenized" in ex else \
          decoding.detokenize(vocab, ex["targets"])
      rows.append({"task": task_name, "index": start + i, "inputs": inputs_text, "targets": targets_text,
                   "prediction": decoding.detokenize(vocab, out.tokens[i], decode_config.eos_id),
                   "score": float(out.scores[i])})
  return rows


@gin.configurable
def infer(*, checkpoint_path: str = gin.REQUIRED, mixture_or_task_name: str = gin.REQUIRED,
          output_dir: str = gin.REQUIRED, split: str = "validation",
          task_feature_lengths: Mapping[str, int] | None = None, batch_size: int = 32,
          max_examples: int | None = None, model_config: Any = None,
          decode_config: decoding.DecodeConfig = decoding.DecodeConfig(),
          mesh: partitioning.MeshConfig = partitioning.MeshConfig(),
          task_modules: Sequence[str] = ("flan_jax.tasks.embedded",), seed: int = 0) -> dict[str, str]:
  """Decodes every example (up to `max_examples` per task) of a task or mixture's `split`
  and writes one JSONL file per task. Inputs are cut to `task_feature_lengths['inputs']`
  (default 512). Returns {task name: file written}."""
  lookup.import_task_modules(task_modules)
  names = lookup.expand_tasks([mixture_or_task_name])  # plain and sampled mixtures alike
  decoder, params, rec = loading.load_decoder(checkpoint_path, model_config, mesh)
  for name in names:  # the tasks must speak the checkpoint's vocabulary
    try:
      loading.choose_vocabulary(rec, loading.seqio_vocabulary(name))
    except ValueError as e:
      raise ValueError(f"task {name}: {e}") from None
  input_length = dict(task_feature_lengths or {}).get("inputs", 512)
  written = {}
  for name in names:
    rows = infer_task(decoder, params, name, split=split, input_length=input_length, batch_size=batch_size,
                      max_examples=max_examples, decode_config=decode_config, seed=seed)
    path = os.path.join(output_dir, f"{name}.jsonl")
    if jax.process_index() == 0:
      os.makedirs(output_dir, exist_ok=True)
      with open(path, "w") as f:
        for row in rows:
          f.write(json.dumps(row, ensure_ascii=False) + "\n")
      print(f"{name}: {len(rows)} predictions -> {path}", flush=True)
    written[name] = path
  return written


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  return gin_utils.run_entry_point("infer", argv, "gin/runs/infer.gin", infer,
                                   before_parse=distributed.initialize_from_env)

if __name__ == "__main__":
  sys.exit(main())
