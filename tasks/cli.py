"""`flan-jax tasks count|list|show`: the Flan 2022 catalogue from the command line.

  flan-jax tasks count [--data_dir=D]                per-collection table, last line `total N`
  flan-jax tasks list [--collection NAME]            one task (family) name per line
  flan-jax tasks show NAME [--format F] [--split S]  one rendered example; with no data for
                                                     it, the template with placeholder fields
"""
from __future__ import annotations

import argparse
import os

from flan_jax.tasks.collections import catalogue


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="flan-jax tasks")
  p.add_argument("--data_dir", default=None, help=f"data dir (default ${catalogue.DATA_DIR_ENV})")
  sub = p.add_subparsers(dest="command", required=True)
  sub.add_parser("count", help="tasks per collection")
  lst = sub.add_parser("list", help="task names")
  lst.add_argument("--collection", choices=catalogue.COLLECTIONS, default=None)
  show = sub.add_parser("show", help="a rendered example")
  show.add_argument("name")
  show.add_argument("--format", default="zsopt")
  show.add_argument("--split", default="validation")
  for s in (lst, show, sub.choices["count"]):
    s.add_argument("--data_dir", default=argparse.SUPPRESS)
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


def _placeholder_example(family: str) -> dict:
  from flan_jax.tasks.collections import families  # pylint: disable=g-import-not-at-top
  example = {f: f"<{f}>" for f in families.FIELDS[family]}
  example.update(options=["<option 1>", "<option 2>"], examples_text="<examples>", id="0")
  return example


def show(name: str, fmt: str, split: str, data_dir=None) -> str:
  from flan_jax.tasks import api  # pylint: disable=g-import-not-at-top
  from flan_jax.tasks import templates as tpl  # pylint: disable=g-import-not-at-top
  from flan_jax.tasks.collections import families  # pylint: disable=g-import-not-at-top
  entry = catalogue.get(name, root=data_dir)
  about = (f"# {entry.name}: {entry.collection}, dataset {entry.dataset}, {entry.category}, "
           f"language {entry.language}, splits {'/'.join(entry.splits)}, "
           f"metrics {'/'.join(entry.metrics)}\n")
  module = {"muffin": "muffin", "t0sf": "t0sf", "niv2": "niv2", "cot": "cot"}[entry.collection]
  __import__(f"flan_jax.tasks.collections.{module}")
  variant = f"{name}_{fmt}"
  registered = api.get_task_info(name).task_names
  if variant not in registered:  # e.g. CoT tasks have only CoT formats
    about += f"# no {fmt} variant; its formats: {', '.join(registered)}\n"
    variant = registered[0]
    fmt = variant.rsplit("_", 1)[1]
  try:
    r = api.render_examples(variant, split, limit=1)[0]
    return (f"{about}[{variant} {split} #{r.index}, template {r.template_index}]\n"
            f"{r.inputs}\n-> {r.targets}")
  except FileNotFoundError as e:
    template = families.TEMPLATES[entry.family][0]
    x, y = tpl.render(template, _placeholder_example(entry.family), tpl.FORMATS[fmt],
                      options=["<option 1>", "<option 2>"], rationale="<rationale>")
    return f"{about}[{variant}: no data ({e}); template 0 with placeholder fields]\n{x}\n-> {y}"


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  if args.data_dir:
    os.environ[catalogue.DATA_DIR_ENV] = args.data_dir
  if args.command == "count":
    print("\n".join(count(args.data_dir)))
  elif args.command == "list":
    print("\n".join(e.name for e in catalogue.entries(args.collection, root=args.data_dir)))
  else:
    print(show(args.name, args.format, args.split, args.data_dir))
  return 0
