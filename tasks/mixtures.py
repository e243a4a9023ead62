"""Registers the Flan 2022 mixtures (importing this module registers them).

  flan2022_submix   FLAN's released mixture (flan/v2/run_example.py of the FLAN
                    repository): flan2021 0.4 / t0 0.32 / niv2 0.2 / cot 0.05 / dialog 0.03
  flan2022_flan2021 the 71 Flan 2021 tasks of FLAN's released code, cap 30,000 per task
  flan2022_t0sf     the 193 T0-SF tasks,                     cap 20,000
  flan2022_niv2     the NIv2 tasks,                          cap  5,000
  flan2022_cot      the 9 CoT tasks (rationales in every example) : their input
                    inversions = 1 : 0.3, cap 100,000
  flan2022_dialog   WikiDialog and QReCC : their input inversions = 1 : 0.3, cap 200,000
  flan2022_submix_paper  the same rates over the paper's membership:
                    flan2022_flan2021_paper (all 77 Flan 2021 tasks of the paper's table)
                    and flan2022_dialog_paper (the three dialog tasks, Taskmaster too)
  flan2022_muffin   all 80 Muffin tasks (dialog included, as the paper counts them),
                    cap 30,000: the scaling ablations' Muffin
  (caps and the CoT : CoT-II rate as in the FLAN repository's flan/v2/mixtures.py; the
  5,000 cap of NIv2 applies per task here, as it does there per NIv2 task.)

Within a submixture, tasks mix examples-proportionally (rate = min(train examples, cap)),
one submixture per format (`BY_FORMAT`), the formats at equal weight as FLAN's are. Each mixture is one seqio Task over
`api.SampledMixtureSource` (members drawn in python by rate), not a seqio Mixture of
thousands of pipelines, so the full mixture yields its first examples in seconds; select
it the same way (MIXTURE_OR_TASK_NAME); `api.sampled_mixture_members(name)` lists what
it draws from.

Scaling ablations by number of tasks (nested as in the paper):
  flan_scaling_9_tasks      CoT
  flan_scaling_89_tasks     + Muffin
  flan_scaling_282_tasks    + T0-SF
  flan_scaling_682_tasks    + the first 400 NIv2 tasks (by task id)
  flan_scaling_1836_tasks   + all of NIv2
and the same without CoT: `flan_scaling_{89,282,682,1836}_tasks_no_cot`. The names keep
the paper's task counts; `TASK_COUNTS` holds how many tasks each one really has here
(dialog counted inside Muffin's 80, as the paper does). These mix the collections at
FLAN's released rates, Muffin taking flan2021's and dialog's together.

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

# FLAN's released mixing rates (flan/v2/run_example.py) and caps (flan/v2/mixtures.py).
RATES = {"flan2021": 0.4, "t0sf": 0.32, "niv2": 0.2, "cot": 0.05, "dialog": 0.03}
CAPS = {"flan2021": 30_000, "t0sf": 20_000, "niv2": 5_000, "cot": 100_000,
        "dialog": 200_000, "muffin": 30_000}
COT_INVERSION_RATE = 0.3   # CoT-II : CoT = 0.3 : 1 inside the CoT submixture
NIV2_TASKS_AT_682 = 400
SCALING = {9: ("cot",), 89: ("cot", "muffin"), 282: ("cot", "muffin", "t0sf"),
           682: ("cot", "muffin", "t0sf", "niv2_400"),
           1836: ("cot", "muffin", "t0sf", "niv2")}
SCALING_RATES = {"cot": RATES["cot"], "muffin": RATES["flan2021"] + RATES["dialog"],
                 "t0sf": RATES["t0sf"], "niv2": RATES["niv2"], "niv2_400": RATES["niv2"]}

# FLAN's format submixtures (flan/v2/mixtures_utils.py, run_example.py's combination_scores): a
# collection's zero-/few-shot x with/without options variants are separate mixtures combined at
# equal weight (25% each for Flan 2021 and T0-SF); NIv2 mixes zero- and few-shot at 50/50, and
# dialog its zero- and few-shot "opt" forms (a dialog has no options).
FORMAT_GROUPS = {"zsopt": ("zsopt",), "fsopt": ("fsopt",), "zsnoopt": ("zsnoopt",), "fsnoopt": ("fsnoopt",)}
NIV2_FORMAT_GROUPS = {"zs": ("zsopt", "zsnoopt"), "fs": ("fsopt", "fsnoopt")}
DIALOG_FORMAT_GROUPS = {"zsopt": ("zsopt",), "fsopt": ("fsopt",)}
BY_FORMAT = {"flan2021": FORMAT_GROUPS, "flan2021_paper": FORMAT_GROUPS, "muffin": FORMAT_GROUPS,
             "t0sf": FORMAT_GROUPS, "niv2": NIV2_FORMAT_GROUPS}
DIALOG_INVERSION_RATE = 0.3   # Dialog-II : dialog = 0.3 : 1 in each dialog format (flan/v2/mixtures.py)

# Membership. FLAN's released code (flan/v2) defines flan2022_submix: its Flan 2021 part leaves
# out six tasks that the paper's task table lists, and its dialog part is WikiDialog and QReCC
# (with their input inversions). `flan2022_submix_paper` takes the paper's membership instead:
# all 77 Flan 2021 tasks and all three dialog tasks.
PAPER_ONLY_FLAN2021 = ("trivia_qa_wiki_missing", "dmcc_python", "dr_repair_plain_code",
                       "dr_repair_line_numbers", "dr_repair_no_errors", "dr_repair_error_comments")
RELEASED_DIALOG = ("wiki_dialog", "qrecc")

VARIANTS = {"muffin": muffin.TASKS, "t0sf": t0sf.TASKS, "niv2": niv2.TASKS, "cot": cot.TASKS}
TASK_COUNTS: dict[str, int] = {}
MISSING: dict[str, str] = {}


def _families(collection: str) -> list[str]:
  return api.list_tasks(f"flan2022_{collection}")


def _variants_of(families: list[str]) -> list[str]:
  return [n for f in families for n in api.get_task_info(f).task_names]


def _register_by_format(name: str, families: list[str], groups: dict[str, tuple[str, ...]], cap: int) -> None:
  """`name` as FLAN builds a collection's mixture: one examples-proportional submixture per
  format group (`{name}_{group}`, capped per task), the groups at equal rates."""
  variants = _variants_of(families)
  members = []
  for group, formats in groups.items():
    chosen = [v for v in variants if v.rsplit("_", 1)[1] in formats]
    if chosen:
      api.register_sampled_mixture(f"{name}_{group}", chosen, cap=cap)
      members.append((f"{name}_{group}", 1.0))
  api.register_sampled_mixture(name, members)


def _muffin_split(released: bool) -> tuple[list[str], list[str]]:
  """Muffin's families without and with the dialog ones (FLAN mixes dialog apart), in the
  released membership or the paper's."""
  entries = {e.name: e for e in catalogue.entries("muffin")}
  flan2021, dialog = [], []
  for f in _families("muffin"):
    e = entries[f]
    if e.family == "dialog":
      if not released or e.dataset in RELEASED_DIALOG:
        dialog.append(f)
    elif not released or e.dataset not in PAPER_ONLY_FLAN2021:
      flan2021.append(f)
  return flan2021, dialog


def _register_dialog(name: str, families: list[str], cap: int) -> None:
  """Dialog as FLAN mixes it: per format, the dialog tasks and their input inversions at
  `DIALOG_INVERSION_RATE`, the formats at equal weight."""
  inversions = set(_families("dialog_inversion"))
  inverted = [f + catalogue.INVERSION_SUFFIX for f in families
              if f + catalogue.INVERSION_SUFFIX in inversions]
  members = []
  for group, formats in DIALOG_FORMAT_GROUPS.items():
    main = [v for v in _variants_of(families) if v.rsplit("_", 1)[1] in formats]
    inv = [v for v in _variants_of(inverted) if v.rsplit("_", 1)[1] in formats]
    api.register_sampled_mixture(f"{name}_{group}_main", main, cap=cap)
    parts = [(f"{name}_{group}_main", 1.0)]
    if inv:
      api.register_sampled_mixture(f"{name}_{group}_inversion", inv, cap=cap)
      parts.append((f"{name}_{group}_inversion", DIALOG_INVERSION_RATE))
    api.register_sampled_mixture(f"{name}_{group}", parts)
    members.append((f"{name}_{group}", 1.0))
  api.register_sampled_mixture(name, members)


def _register_submixtures() -> dict[str, int]:
  """name of each submixture -> number of tasks in it."""
  sizes = {}
  flan2021, dialog = _muffin_split(released=True)
  flan2021_paper, dialog_paper = _muffin_split(released=False)
  groups = {"flan2021": flan2021, "dialog": dialog, "flan2021_paper": flan2021_paper,
            "dialog_paper": dialog_paper, "muffin": _families("muffin"),
            "t0sf": _families("t0sf"), "niv2": _families("niv2"), "cot": _families("cot")}
  for part, families in groups.items():
    if not families:
      MISSING[f"flan2022_{part}"] = (
          f"no {part} tasks are registered: no NIv2 task listing was found (bundled "
          f"list, or under {catalogue.data_dir()}); run `flan-jax data prepare niv2`")
      continue
    cap = CAPS[part.removesuffix("_paper")]
    if part == "cot":
      api.register_sampled_mixture("flan2022_cot_main", _variants_of(families), cap=cap)
      members = [("flan2022_cot_main", 1.0)]
      inversions = _families("cot_inversion")
      if inversions:
        api.register_sampled_mixture("flan2022_cot_inversion", _variants_of(inversions), cap=cap)
        members.append(("flan2022_cot_inversion", COT_INVERSION_RATE))
      api.register_sampled_mixture("flan2022_cot", members)
    elif part.startswith("dialog"):
      _register_dialog(f"flan2022_{part}", families, cap)
    elif part in BY_FORMAT:
      _register_by_format(f"flan2022_{part}", families, BY_FORMAT[part], cap)
    else:
      api.register_sampled_mixture(f"flan2022_{part}", _variants_of(families), cap=cap)
    sizes[part] = len(families)
  niv2_families = _families("niv2")[:NIV2_TASKS_AT_682]
  if len(niv2_families) == NIV2_TASKS_AT_682:
    _register_by_format("flan2022_niv2_400", niv2_families, NIV2_FORMAT_GROUPS, CAPS["niv2"])
    sizes["niv2_400"] = NIV2_TASKS_AT_682
  return sizes


def _register_mix(name: str, rates: dict[str, float], sizes, counted=None) -> None:
  absent = [p for p in rates if p not in sizes]
  if absent:
    MISSING[name] = f"needs submixture(s) {absent}: " + "; ".join(
        MISSING.get(f"flan2022_{p}", f"flan2022_{p} is not registered") for p in absent)
    return
  api.register_sampled_mixture(name, [(f"flan2022_{p}", r) for p, r in rates.items()])
  TASK_COUNTS[name] = sum(sizes[p] for p in (counted or rates))


# The paper's membership at the released rates.
PAPER_RATES = {"flan2021_paper": RATES["flan2021"], "t0sf": RATES["t0sf"], "niv2": RATES["niv2"],
               "cot": RATES["cot"], "dialog_paper": RATES["dialog"]}


def register_all(data_dir=None) -> None:
  """(Re-)registers every mixture from the tasks registered now (e.g. after
  `cot.register(data_dir=...)`: seqio mixtures hold the Task objects they were built with).
  With `data_dir`, the four collections are first registered again to read there."""
  if data_dir is not None:
    for collection in (muffin, t0sf, niv2, cot):
      collection.register(data_dir=data_dir)
  MISSING.clear()
  TASK_COUNTS.clear()
  sizes = _register_submixtures()
  for part in ("muffin", "flan2021", "dialog", "flan2021_paper", "dialog_paper", "t0sf", "niv2", "cot"):
    if part in sizes:
      TASK_COUNTS[f"flan2022_{part}"] = sizes[part]
  _register_mix("flan2022_submix", RATES, sizes)
  _register_mix("flan2022_submix_paper", PAPER_RATES, sizes)
  for n, parts in SCALING.items():
    _register_mix(f"flan_scaling_{n}_tasks", {p: SCALING_RATES[p] for p in parts}, sizes)
    if n != 9:
      _register_mix(f"flan_scaling_{n}_tasks_no_cot",
                    {p: SCALING_RATES[p] for p in parts if p != "cot"}, sizes)


register_all()
