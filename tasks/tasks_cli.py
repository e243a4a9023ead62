"""`flan-jax tasks count|list|show`: the Flan 2022 catalogue from the command line.

  flan-jax tasks count [--data_dir=D]                per-collection table, last line `total N`
  flan-jax tasks list [--collection NAME]            one task (family) name per line
  flan-jax tasks list --mixtures                     the registered mixtures
  flan-jax tasks list --all                          families (Flan 2022 and embedded) and mixtures
  flan-jax tasks show NAME [--format F] [--split S]  one rendered example; with no data for
                                                     it, the template with placeholder fields

Every name `list` prints is accepted as MIXTURE_OR_TASK_NAME (a family is the mixture of
its format variants at equal rates), and so is a variant `FAMILY_zsopt`, .... `show` takes
a family, a variant, an embedded task or the paper's NIv2 spelling (`task001_...`).
"""
from __future__ import annotations

import argparse
import difflib
import re

from flan_jax.tasks import embedded_families
from flan_jax.tasks import templates as tpl
from flan_jax.tasks.collections import catalogue, families

FORMATS = ("zsopt", "zsnoopt", "fsopt", "fsnoopt", "zscot", "fscot")
DEFAULT_FORMAT = "zsopt"
# What `list --mixtures` / `--all` import to find the mixtures (more with --task_module).
MIXTURE_MODULES = ("flan_jax.tasks.embedded", "flan_jax.tasks.mini_scaling", "flan_jax.tasks.mixtures")
_VARIANT = re.compile(r"^(.+)_(" + "|".join(FORMATS) + r")$")
_COLLECTION_MODULES = {"muffin": "muffin", "t0sf": "t0sf", "niv2": "niv2", "cot": "cot"}


def _parser() -> argparse.ArgumentParser:
  raw = argparse.RawDescriptionHelpFormatter
  p = argparse.ArgumentParser(prog="flan-jax tasks", formatter_class=raw,
                              description=__doc__.split("\n\n", 1)[1].strip())
  p.add_argument("--data_dir", default=None, help=f"data dir (default ${catalogue.DATA_DIR_ENV}, else "
                                                  f"{catalogue.DEFAULT_DATA_DIR})")
  sub = p.add_subparsers(dest="command", required=True, metavar="{count,list,show}")
  count_p = sub.add_parser("count", help="tasks per collection, with the paper's counts")
  lst = sub.add_parser("list", help="task family names (--mixtures: mixtures; --all: both, embedded included)",
                       description="One name per line. Default: the 1,838 Flan 2022 task families of the "
                                   "catalogue (no data needed).")
  lst.add_argument("--collection", choices=catalogue.COLLECTIONS, default=None,
                   help="only this collection's families")
  what = lst.add_mutually_exclusive_group()
  what.add_argument("--mixtures", action="store_true",
                    help=f"the registered mixtures instead (imports {', '.join(MIXTURE_MODULES)})")
  what.add_argument("--all", action="store_true",
                    help="every family (Flan 2022 and the embedded ones) and every mixture")
  lst.add_argument("--task_module", action="append", default=[], metavar="MODULE",
                   help="also import MODULE (repeatable; e.g. my_tasks from the working directory)")
  show = sub.add_parser("show", help="a rendered example of a task in one format",
                        description="One rendered example (inputs -> targets) of NAME in one FLAN format, with "
                                    "the task's metadata; without data for it, its first template with "
                                    "placeholder fields.")
  show.add_argument("name", help="family (muffin_anli_r1), variant (muffin_anli_r1_zsopt), embedded task "
                                 "(embedded_arithmetic) or NIv2 task as the paper writes it (task001_...)")
  show.add_argument("--format", default=None, choices=None,
                    help=f"one of {', '.join(FORMATS)} (default: the variant's, else {DEFAULT_FORMAT})")
  show.add_argument("--split", default="validation", help="split to draw the example from (default validation)")
  for s in (lst, show, count_p):
    s.add_argument("--data_dir", default=argparse.SUPPRESS, help="as above")
  return p


def count(data_dir=None) -> list[str]:
  counts = catalogue.counts(data_dir)
  lines = [f"{'collection':<10} {'tasks':>6} {'paper':>6}"]
  lines += [f"{c:<10} {n:>6} {catalogue.PAPER_COUNTS[c]:>6}" for c, n in counts.items()]
  if not counts["niv2"]:
    lines.append("# niv2: no task listing found; run `flan-jax data prepare niv2`")
  elif counts["niv2"] != catalogue.PAPER_COUNTS["niv2"]:
    lines.append(f"# niv2: {counts['niv2']} = the NIv2 tasks of the published Flan Collection "
                 f"task table; the paper's text says {catalogue.PAPER_COUNTS['niv2']} "
                 "(see the README)")
  lines.append(f"total {sum(counts.values())}")
  return lines


def list_names(collection=None, *, mixtures=False, everything=False, modules=(), data_dir=None) -> list[str]:
  """The names `flan-jax tasks list` prints."""
  families = [] if mixtures else [e.name for e in catalogue.entries(collection, root=data_dir)]
  if not (mixtures or everything) and not modules:
    return families
  from flan_jax.tasks import api  # pylint: disable=g-import-not-at-top
  from flan_jax.tasks import lookup  # pylint: disable=g-import-not-at-top  (seqio: not for --help)
  lookup.import_task_modules(list(MIXTURE_MODULES if (mixtures or everything) else ()) + list(modules),
                             data_dir=data_dir)
  if mixtures:
    return api.list_mixtures()
  extra = [n for n in api.list_tasks() if n not in set(families)
           and (collection is None or api.get_task_info(n).collection == collection)]
  return families + extra + (api.list_mixtures() if everything and collection is None else [])


def _placeholder_example(family: str) -> dict:
  example = {f: f"<{f}>" for f in families.FIELDS[family]}
  example.update(options=["<option 1>", "<option 2>"], examples_text="<examples>", id="0")
  return example


def _known_family_names(data_dir=None) -> list[str]:
  return ([e.name for e in catalogue.entries(root=data_dir)]
          + ["embedded_" + f for f in embedded_families.FAMILIES])


def resolve(name: str, fmt: str | None, data_dir=None) -> tuple[str, str, catalogue.Entry | None]:
  """(family, format, catalogue entry or None) for `tasks show NAME [--format F]`; imports the
  module that registers the family. ValueErrors say what is wrong and what is accepted."""
  family, named_fmt = name, None
  m = _VARIANT.match(name)
  if m:
    family, named_fmt = m.groups()
    if fmt is not None and fmt != named_fmt:
      raise ValueError(f"{name!r} is the {named_fmt} variant of {family}, but --format={fmt}; give one of them")
  asked = fmt or named_fmt
  fmt = asked or DEFAULT_FORMAT
  if fmt not in FORMATS:
    raise ValueError(f"unknown format {fmt!r}; the FLAN formats are {', '.join(FORMATS)}")
  entries = {e.name: e for e in catalogue.entries(root=data_dir)}
  if family not in entries and f"niv2_{family}" in entries:  # the paper writes NIv2 tasks as task001_...
    family = f"niv2_{family}"
  entry = entries.get(family)
  # CoT and dialog inversions (CoT-II, Dialog-II) are registered with their task, under its
  # catalogue entry.
  inverted = entries.get(family[:-len(catalogue.INVERSION_SUFFIX)]) if family.endswith(catalogue.INVERSION_SUFFIX) else None
  if entry is None and inverted is not None and inverted.family in ("cot", "dialog"):
    entry = inverted
  from flan_jax.tasks import api, lookup  # pylint: disable=g-import-not-at-top
  if entry is not None:
    lookup.import_task_modules([f"flan_jax.tasks.collections.{_COLLECTION_MODULES[entry.collection]}"],
                               data_dir=data_dir)
  else:
    lookup.import_task_modules(["flan_jax.tasks.embedded"])
  try:
    info = api.get_task_info(family)
  except KeyError:
    close = difflib.get_close_matches(family, _known_family_names(data_dir), n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"no task {name!r} in the Flan 2022 catalogue or the embedded tasks.{hint} "
                     "`flan-jax tasks list --all` lists the names") from None
  if asked is None and fmt not in info.formats:  # e.g. CoT tasks have only CoT formats
    fmt = info.formats[0]
  if fmt not in info.formats:
    why = ("it has no rationales, so no CoT formats" if fmt.endswith("cot") and not any(
        f.endswith("cot") for f in info.formats) else "it has no train split to draw exemplars from"
           if fmt.startswith("fs") else "it was registered without it")
    raise ValueError(f"{family} has no {fmt} format ({why}); its formats: {', '.join(info.formats)}")
  return family, fmt, entry


def show(name: str, fmt: str | None, split: str, data_dir=None) -> str:
  from flan_jax.tasks import api  # pylint: disable=g-import-not-at-top
  family, fmt, entry = resolve(name, fmt, data_dir)
  info = api.get_task_info(family)
  inversion = entry is not None and entry.name != family  # a CoT-II or Dialog-II task, catalogued with its task
  if entry is not None and not inversion:
    about = (f"# {entry.name}: {entry.collection}, dataset {entry.dataset}, {entry.category}, "
             f"language {entry.language}, splits {'/'.join(entry.splits)}, "
             f"metrics {'/'.join(entry.metrics)}\n")
  else:
    about = (f"# {info.name}: {info.collection}, dataset {info.source}, {info.category}, "
             f"language {info.language}, splits {'/'.join(info.splits)}, metrics {'/'.join(info.metrics)}\n")
  if split not in info.splits:
    raise ValueError(f"{family} has no split {split!r}; its splits: {', '.join(info.splits)}")
  variant = f"{family}_{fmt}"
  try:
    r = api.render_examples(variant, split, limit=1)[0]
    return (f"{about}[{variant} {split} #{r.index}, template {r.template_index}]\n"
            f"{r.inputs}\n-> {r.targets}")
  except FileNotFoundError as e:
    if entry is None:
      raise
    inversions = families.DIALOG_INVERSIONS if entry.family == "dialog" else families.COT_INVERSION
    template = (inversions if inversion else families.TEMPLATES[entry.family])[0]
    x, y = tpl.render(template, _placeholder_example(entry.family), tpl.FORMATS[fmt],
                      options=["<option 1>", "<option 2>"], rationale="<rationale>")
    return f"{about}[{variant}: no data ({e}); template 0 with placeholder fields]\n{x}\n-> {y}"


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  if args.command == "count":
    print("\n".join(count(args.data_dir)))
  elif args.command == "list":
    print("\n".join(list_names(args.collection, mixtures=args.mixtures, everything=args.all,
                               modules=args.task_module, data_dir=args.data_dir)))
  else:
    print(show(args.name, args.format, args.split, args.data_dir))
  return 0
