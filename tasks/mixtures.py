"""Registers the Flan 2022 mixtures of the paper (importing this module registers them).

  flan2022_submix        the four submixtures below, mixed 46 : 27.9 : 24.2 : 1.8
                         (Muffin : T0-SF : NIv2 : CoT, the Flan Collection's published rates)
  flan2022_muffin        every format variant of the 80 Muffin tasks,  cap 30,000 per task
  flan2022_t0sf          ... the 193 T0-SF tasks,                      cap 20,000
  flan2022_niv2          ... the NIv2 tasks,                           cap  5,000
  flan2022_cot           ... the 9 CoT tasks,                          cap 100,000
  (caps as in the FLAN repository's flan/v2/mixtures.py)

Within a submixture, tasks mix examples-proportionally: rate = min(train examples, cap).
Each of these is registered as one seqio Task over `api.SampledMixtureSource` (members
drawn in python by rate), not as a seqio Mixture of thousands of pipelines, so the full
mixture yields its first examples in seconds; select it the same way
(MIXTURE_OR_TASK_NAME), and `api.sampled_mixture_members(name)` lists what it draws from.

Scaling ablations by number of tasks (nested as in the paper):
  flan_scaling_9_tasks      CoT
  flan_scaling_89_tasks     + Muffin
  flan_scaling_282_tasks    + T0-SF
  flan_scaling_682_tasks    + the first 400 NIv2 tasks (by task id)
  flan_scaling_1836_tasks   + all of NIv2
and the same without CoT: `flan_scaling_{89,282,682,1836}_tasks_no_cot`. The names keep
the paper's task counts; `TASK_COUNTS` holds how many tasks each one really has here.

Nothing reads data at registration; rates (numbers of examples) and examples are read
when a dataset is built, and a task without data then fails naming itself and the data
dir. Without an NIv2 task listing (see catalogue.niv2_listing) the mixtures that need
NIv2 tasks are not registered and `MISSING` says why.
"""
from __future__ import annotations

from flan_jax.tasks import api
from flan_jax.tasks.collections import catalogue
from flan_jax.tasks.collections import cot
from flan_jax.tasks.collections import muffin
from flan_jax.tasks.collections import niv2
from flan_jax.tasks.collections import t0sf

RATES = {"muffin": 46.0, "t0sf": 27.9, "niv2": 24.2, "cot": 1.8}
CAPS = {"muffin": 30_000, "t0sf": 20_000, "niv2": 5_000, "cot": 100_000}
NIV2_TASKS_AT_682 = 400
SCALING = {9: ("cot",), 89: ("cot", "muffin"), 282: ("cot", "muffin", "t0sf"),
           682: ("cot", "muffin", "t0sf", "niv2_400"),
           1836: ("cot", "muffin", "t0sf", "niv2")}

VARIANTS = {"muffin": muffin.TASKS, "t0sf": t0sf.TASKS, "niv2": niv2.TASKS, "cot": cot.TASKS}
TASK_COUNTS: dict[str, int] = {}
MISSING: dict[str, str] = {}


def _families(collection: str) -> list[str]:
  return api.list_tasks(f"flan2022_{collection}")


def _variants_of(families: list[str]) -> list[str]:
  return [n for f in families for n in api.get_task_info(f).task_names]


def _register_submixtures() -> dict[str, int]:
  """name of each collection's submixture -> number of tasks in it."""
  sizes = {}
  for collection in RATES:
    families = _families(collection)
    if not families:
      MISSING[f"flan2022_{collection}"] = (
          f"no {collection} tasks are registered: no NIv2 task listing was found (bundled "
          f"list, or under {catalogue.data_dir()}); run `flan-jax data prepare niv2`")
      continue
    api.register_sampled_mixture(f"flan2022_{collection}", _variants_of(families),
                                 cap=CAPS[collection])
    sizes[collection] = len(families)
  niv2_families = _families("niv2")[:NIV2_TASKS_AT_682]
  if len(niv2_families) == NIV2_TASKS_AT_682:
    api.register_sampled_mixture("flan2022_niv2_400", _variants_of(niv2_families),
                                 cap=CAPS["niv2"])
    sizes["niv2_400"] = NIV2_TASKS_AT_682
  return sizes


def _register_mix(name: str, parts, sizes) -> None:
  absent = [p for p in parts if p not in sizes]
  if absent:
    MISSING[name] = f"needs submixture(s) {absent}: " + "; ".join(
        MISSING.get(f"flan2022_{p}", f"flan2022_{p} is not registered") for p in absent)
    return
  api.register_sampled_mixture(name, [(f"flan2022_{p}", RATES[p.split("_")[0]])
                                      for p in parts])
  TASK_COUNTS[name] = sum(sizes[p] for p in parts)


def register_all() -> None:
  """(Re-)registers every mixture from the tasks registered now (e.g. after
  `cot.register(data_dir=...)`: seqio mixtures hold the Task objects they were built with)."""
  MISSING.clear()
  TASK_COUNTS.clear()
  sizes = _register_submixtures()
  for collection in RATES:
    if collection in sizes:
      TASK_COUNTS[f"flan2022_{collection}"] = sizes[collection]
  _register_mix("flan2022_submix", list(RATES), sizes)
  for n, parts in SCALING.items():
    _register_mix(f"flan_scaling_{n}_tasks", parts, sizes)
    if n != 9:
      _register_mix(f"flan_scaling_{n}_tasks_no_cot", [p for p in parts if p != "cot"], sizes)


register_all()
