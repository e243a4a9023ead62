"""A run's few-shot prompts are fitted to its own input length, also when they are read later.

`flan-jax train` builds its tf.data pipeline with the run's lengths, then reads it in a
background thread (`data.ReadAhead`). The budget travels with seqio's request for data (its
`sequence_length`), so it is the run's however late the first example is rendered, and nothing
is left on the renderers.
"""
from __future__ import annotations

import numpy as np
import pytest

from flan_jax.training import data
from flan_jax.tasks import api, templates

INPUTS = 256


def _register():
  words = "the quick brown fox jumps over a lazy dog while seven wise owls watch from tall trees".split()
  rng = np.random.default_rng(0)
  rows = [{"question": " ".join(rng.choice(words, 40)) + f" question {i}?", "answer": f"answer {i}"}
          for i in range(300)]
  return api.register_flan_task(
      "budget_probe", {"train": rows, "validation": rows[:20]},
      [templates.Template("{question}", "{answer}"), templates.Template("Q: {question}", "{answer}")],
      num_fewshot=5, formats=("fsnoopt",))


def _segment_lengths(batch) -> list[int]:
  out = []
  for row in batch["encoder_segment_ids"]:
    ids, counts = np.unique(row[row > 0], return_counts=True)
    out += counts.tolist()
  return out


@pytest.mark.slow
def test_training_reads_prompts_fitted_to_its_own_input_length():
  [name] = _register()
  task, batches = data.open_pipeline(["flan_jax.tasks.embedded"], name, {"inputs": INPUTS, "targets": 16}, 8,
                                     vocab_size=2048, feature_converter="encdec", pack=True, seed=0,
                                     use_cached=False, sharding="per_process")
  inputs = data.ReadAhead(data.pipeline_from(batches), 0, depth=4, defer=True)  # as `flan-jax train` reads
  try:
    lengths = [n for _ in range(4) for n in _segment_lengths(next(inputs))]
  finally:
    inputs.close()
  budget = INPUTS * 15 // 16  # FLAN's 1,920 of 2,048, at this run's length
  assert lengths and max(lengths) <= budget, f"prompts of {max(lengths)} tokens; the run's budget is {budget}"
  # And it is a few-shot prompt, not a bare query: exemplars were fitted, not dropped.
  assert np.median(lengths) > 100
