"""Registers the mixtures of the miniature scaling study (gin/sweeps/mini_scaling.gin).

The paper (Chung et al. 2022, Figure 4) fine-tunes on 9, 89, 282, 682 and 1,836 tasks,
each set containing the previous one, with and without the CoT data. The miniature
study does the same over the six embedded training families (`tasks/embedded.py`):

  mini_scaling_{n}_families         the first n families of `TRAIN_FAMILIES`, every format
  mini_scaling_{n}_families_no_cot  the same families without their CoT formats

for n = 1..6. The sets are nested (n families contain the n-1 before them) and the
families with rationales (arithmetic, boolean_expressions) come first, so every
with-CoT mixture holds CoT data. Evaluation uses the held-out families
(`flan_jax_embedded_heldout`), as the paper evaluates on held-out benchmarks.
"""
from __future__ import annotations

from flan_jax.tasks import api, embedded
from flan_jax.tasks import embedded_families as families

FAMILY_ORDER = tuple(f.name for f in families.TRAIN_FAMILIES)
COT_FORMATS = ("_zscot", "_fscot")


def mixture_name(num_families: int, cot: bool = True) -> str:
  return f"mini_scaling_{num_families}_families" + ("" if cot else "_no_cot")


def tasks_of(num_families: int, cot: bool = True) -> list[str]:
  """The embedded task variants of the first `num_families` training families."""
  if not 1 <= num_families <= len(FAMILY_ORDER):
    raise ValueError(f"num_families={num_families}: the embedded collection has 1..{len(FAMILY_ORDER)} "
                     f"training families ({', '.join(FAMILY_ORDER)})")
  prefixes = tuple(embedded.TASK_PREFIX + f + "_" for f in FAMILY_ORDER[:num_families])
  return [t for t in embedded.TRAIN_TASKS
          if t.startswith(prefixes) and (cot or not t.endswith(COT_FORMATS))]


MIXTURES = {}
for _n in range(1, len(FAMILY_ORDER) + 1):
  for _cot in (True, False):
    MIXTURES[mixture_name(_n, _cot)] = tasks_of(_n, _cot)
    api.register_mixture(mixture_name(_n, _cot), MIXTURES[mixture_name(_n, _cot)])
