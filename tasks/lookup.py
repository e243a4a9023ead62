"""Finding tasks by name: importing the modules that register them (TASK_MODULES), task
families registered as mixtures on first use, and errors that name close matches and the
module a Flan 2022 catalogue name needs."""
from __future__ import annotations

import difflib
import importlib
import inspect
import os
import re
import sys
from typing import Sequence

import seqio

from flan_jax.tasks import api
from flan_jax.tasks.collections import catalogue


def import_task_modules(modules: Sequence[str], data_dir: str | None = None) -> None:
  """Imports the modules whose import registers tasks (e.g. 'flan_jax.tasks.embedded').

  A module not found on sys.path is looked up in the working directory too, as
  `python -m` would: `--gin.TASK_MODULES="['flan_jax.tasks.embedded', 'my_tasks']"` finds
  ./my_tasks.py.

  `data_dir`: where prepared data is read (`flan-jax data prepare`'s directory); a module that
  registers tasks over prepared data offers `register_all(data_dir=...)` (the Flan mixtures,
  the held-out suites) or `register(data_dir=...)` (one collection), and is registered again
  with it. Without one, modules read the default (FLAN_JAX_DATA_DIR, else ~/.cache/flan_jax/data)."""
  for name in modules:
    if not isinstance(name, str):
      raise ValueError(f"TASK_MODULES holds {name!r}, not a module name; give a list of names such as "
                       "['flan_jax.tasks.embedded', 'my_tasks']")
    try:
      try:
        importlib.import_module(name)
      except ModuleNotFoundError as e:
        cwd = os.getcwd()
        if e.name != name.split(".")[0] or cwd in sys.path:
          raise
        sys.path.append(cwd)
        importlib.import_module(name)
    except ImportError as e:
      where = f" (looked on sys.path and in the working directory {os.getcwd()})" if isinstance(
          e, ModuleNotFoundError) and e.name == name.split(".")[0] else ""
      raise ValueError(f"cannot import task module {name!r} (gin: TASK_MODULES): {e}{where}") from e
    if data_dir is not None:
      _register_with(sys.modules[name], data_dir)


def _register_with(module, data_dir: str) -> None:
  for attr in ("register_all", "register"):
    fn = getattr(module, attr, None)
    if callable(fn) and "data_dir" in inspect.signature(fn).parameters:
      fn(data_dir=data_dir)
      return


def _catalogue_hint(name: str) -> str:
  """Why a Flan 2022 catalogue name is not registered, if it is one."""
  family = re.sub(r"_(zsopt|zsnoopt|fsopt|fsnoopt|zscot|fscot)$", "", name)
  try:
    entry = catalogue.get(family)
  except KeyError:
    return ""
  return (f" {family!r} is a Flan 2022 task ({entry.collection}) whose module is not imported: add "
          f"'flan_jax.tasks.mixtures' to TASK_MODULES, e.g. "
          f"--gin.TASK_MODULES=\"['flan_jax.tasks.embedded', 'flan_jax.tasks.mixtures']\".")


def unknown_task_message(name: str, what: str = "MIXTURE_OR_TASK_NAME") -> str:
  """The error for a name that is neither a task, a family nor a mixture: close names that
  would be accepted, and where to list them."""
  known = api.accepted_names()
  close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
  hint = f" Did you mean: {', '.join(close)}?" if close else ""
  return (f"unknown task or mixture {name!r} (gin: {what}).{hint}{_catalogue_hint(name)} Accepted: a task "
          f"family (`flan-jax tasks list`; `--all` adds the embedded ones), a mixture (`flan-jax tasks list "
          f"--mixtures`), or a family's format variant FAMILY_zsopt/_zsnoopt/_fsopt/_fsnoopt/_zscot/_fscot; "
          f"the modules in TASK_MODULES register {len(known)} names.")


def get_mixture_or_task(name: str) -> seqio.Task | seqio.Mixture:
  """Looks a name up in both registries; a task family (as `flan-jax tasks list` prints it)
  is the mixture of its format variants at equal rates. An unknown name lists close ones."""
  if name in seqio.TaskRegistry.names() or name in seqio.MixtureRegistry.names():
    return seqio.get_mixture_or_task(name)
  family = api.register_family_mixture(name)
  if family is not None:
    return family
  raise ValueError(unknown_task_message(name))


def expand_tasks(names: Sequence[str]) -> list[str]:
  """Task names, with mixtures replaced by their tasks (sorted, no duplicates)."""
  out = []
  for n in names:
    if api.is_sampled_mixture(n):
      out += api.sampled_mixture_tasks(n, "validation")
    elif n in seqio.MixtureRegistry.names():
      out += [t.name for t in seqio.get_mixture_or_task(n).tasks]
    elif n in seqio.TaskRegistry.names():
      out.append(n)
    else:  # a task family is the mixture of its formats; anything else raises, naming close names
      out += [t.name for t in getattr(get_mixture_or_task(n), "tasks", ())]
  return list(dict.fromkeys(sorted(out)))
