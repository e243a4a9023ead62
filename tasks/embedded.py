"""Registers the embedded instruction tasks and mixtures (no download needed).

Importing this module registers, for each family of `embedded_families`, the FLAN
variants `embedded_{family}_{zsopt,zsnoopt,fsopt,fsnoopt}` (+ `_zscot`, `_fscot` for the
families with rationales), and two mixtures:

  flan_jax_embedded          every variant of the six train families (train split)
  flan_jax_embedded_heldout  every variant of the held-out families, for evaluation
                             (their train split only supplies few-shot exemplars)

Importing again re-registers the same tasks (idempotent).
"""
from __future__ import annotations

import functools

from flan_jax.tasks import api
from flan_jax.tasks import embedded_families as families

COLLECTION = "flan_jax_embedded"
TRAIN_MIXTURE = "flan_jax_embedded"
HELDOUT_MIXTURE = "flan_jax_embedded_heldout"
MAX_INPUT_TOKENS = 256   # few-shot prompts drop exemplars to fit, so nothing is cut
TASK_PREFIX = "embedded_"


def register_family(family: families.Family) -> list[str]:
  """Registers every FLAN variant of one embedded family; returns the task names."""
  source = {split: functools.partial(families.examples, family.name, split)
            for split in ("train", "validation")}
  return api.register_flan_task(
      TASK_PREFIX + family.name,
      source,
      family.templates,
      metrics=family.metrics,
      collection=COLLECTION,
      category=family.category,
      dataset=f"flan_jax.tasks.embedded_families.{family.name}",
      options_key=family.options_key,
      rationale_key=family.rationale_key,
      max_input_tokens=MAX_INPUT_TOKENS,
  )


TRAIN_TASKS = [name for f in families.TRAIN_FAMILIES for name in register_family(f)]
HELDOUT_TASKS = [name for f in families.HELDOUT_FAMILIES for name in register_family(f)]
api.register_mixture(TRAIN_MIXTURE, TRAIN_TASKS)
api.register_mixture(HELDOUT_MIXTURE, HELDOUT_TASKS)
