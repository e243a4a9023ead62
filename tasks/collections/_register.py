"""Shared registration of catalogue entries (used by muffin.py, t0sf.py, niv2.py, cot.py)."""
from __future__ import annotations

from collections.abc import Callable, Iterable

from flan_jax.tasks import api
from flan_jax.tasks.collections import catalogue
from flan_jax.tasks.collections import families
from flan_jax.tasks.collections import muffin_templates
from flan_jax.tasks.collections import readers

NUM_FEWSHOT = 5   # FLAN's fixed-count few-shot format ("five_shot"); x-shot takes 2-3 of 25
INVERSION_SUFFIX = catalogue.INVERSION_SUFFIX
# FLAN's dialog mixtures have zero- and few-shot "opt" forms only (a dialog has no options).
DIALOG_FORMATS = ("zsopt", "fsopt")


def _entry_kwargs(e: catalogue.Entry) -> dict:
  """How one catalogue entry renders, as FLAN renders its collection: Flan 2021 draws its
  options' look per example (label targets included) over ten templates per dataset;
  T0-SF wraps the P3 prompt in FLAN's ten T0 templates and shows the options only of the
  prompts that do not list their own; CoT trains with
  rationales only (its formats are the CoT ones) and its dataset's own templates; NIv2's
  few-shot form is the definition with the task's positive examples."""
  kw = dict(
      options_key="options" if e.options else None,
      varied_options=e.collection == "muffin",
      fewshot_patterns=families.FEWSHOT_PATTERNS[e.family], xshot=True,
      num_fewshot=NUM_FEWSHOT, id_key="id" if e.family == "niv2" else None)
  templates = families.TEMPLATES[e.family]
  if e.collection == "t0sf":
    # FLAN's T0 wrappers around the P3 prompt, in all four formats; the separated-options
    # prompts show their choices in a style drawn per example.
    templates = families.T0_WRAPPERS_OPTIONS if e.options else families.T0_WRAPPERS
    kw.update(varied_options=e.options, fewshot_patterns=families.FEWSHOT_PATTERNS["t0"])
  if e.collection == "muffin" and e.dataset in muffin_templates.DATASETS:
    templates = muffin_templates.templates_of(e.dataset)
  if e.family == "dialog":
    kw["formats"] = DIALOG_FORMATS
  if e.family == "cot":
    templates = families.COT_TEMPLATES.get(e.dataset, templates)
    kw.update(rationale_key="rationale", formats=("zscot", "fscot"))
  if e.family == "niv2":
    kw.update(demonstrations_key="positive_examples",
              fewshot_templates=families.NIV2_FEWSHOT, instance_templates=families.NIV2_INSTANCES)
  return dict(templates=templates, **kw)


def register_entries(entries: Iterable[catalogue.Entry],
                     make_source: Callable[[catalogue.Entry], object], **kwargs) -> list[str]:
  """Registers every FLAN format variant of each entry; returns the seqio task names.
  No data is read: `make_source` must return a lazy source."""
  names = []
  for e in entries:
    kw = _entry_kwargs(e)
    templates = kw.pop("templates")
    names += api.register_flan_task(
        e.name, make_source(e), templates, metrics=e.metrics,
        collection=f"flan2022_{e.collection}", category=e.category, language=e.language,
        dataset=e.dataset, splits=e.splits, **{**kw, **kwargs})
  return names


def register_cot_inversions(entries: Iterable[catalogue.Entry],
                            make_source: Callable[[catalogue.Entry], object]) -> list[str]:
  """FLAN's CoT input inversions ("CoT-II"): write the question from the rationale and
  answer. Catalogued as `flan2022_cot_inversion`, so the CoT task count stays nine."""
  names = []
  for e in entries:
    names += api.register_flan_task(
        e.name + INVERSION_SUFFIX, make_source(e), families.COT_INVERSION,
        metrics=("token_f1",),
        collection="flan2022_cot_inversion", category=e.category, language=e.language,
        dataset=e.dataset, splits=e.splits, xshot=True, num_fewshot=NUM_FEWSHOT,
        fewshot_patterns=families.FEWSHOT_PATTERNS["cot"])
  return names


def register_dialog_inversions(data_dir=None) -> list[str]:
  """FLAN's dialog input inversions ("Dialog-II"): write the dialog before a given turn,
  one task per dialog dataset (`<task>_inversion`, catalogued as
  `flan2022_dialog_inversion`), in the dialog formats (zero- and few-shot)."""
  root = catalogue.data_dir(data_dir)
  names = []
  for e in catalogue.entries("muffin"):
    if e.family != "dialog":
      continue
    names += api.register_flan_task(
        e.name + INVERSION_SUFFIX, readers.TaskFilesSource(root, "muffin", e.name, e.splits),
        families.DIALOG_INVERSIONS, metrics=("token_f1",), collection="flan2022_dialog_inversion",
        category=e.category, language=e.language, dataset=e.dataset, splits=e.splits,
        xshot=True, num_fewshot=NUM_FEWSHOT, fewshot_patterns=families.FEWSHOT_PATTERNS["dialog"],
        formats=DIALOG_FORMATS)
  return names


def register_file_collection(collection: str, data_dir=None, files=readers.TaskFilesSource) -> list[str]:
  """Registers a collection whose tasks read `<data_dir>/<collection>/<task>/<split>.jsonl`
  through `files` (a `readers.TaskFilesSource` class)."""
  root = catalogue.data_dir(data_dir)
  return register_entries(
      catalogue.entries(collection), lambda e: files(root, collection, e.name, e.splits))
