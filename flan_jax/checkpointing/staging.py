"""Where converters write: only into a new or empty directory, all at once.

A conversion reads and checks every input first, writes its output into a temporary
directory beside the destination, and renames it into place when complete, so a failed
conversion leaves nothing, and an existing directory (a user's files, a training run, the
source itself) is never written into. `--overwrite` replaces a non-empty destination that is
neither a training run nor a source.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from typing import Iterator

RUN_MARKERS = ("checkpoints", "train_metrics.jsonl", "writer.lock", "run.json")


class DestinationError(ValueError):
  """A destination a converter must not write into; the message names it and why."""


def check_destination(dst: str, *sources: str, overwrite: bool = False) -> None:
  """Raises DestinationError unless DST may receive a conversion of SOURCES."""
  if "://" in dst:
    raise DestinationError(f"{dst}: converters write to a local directory")
  real = os.path.realpath(dst)
  for src in sources:
    if "://" in str(src):
      continue
    s = os.path.realpath(src)
    if real == s or real.startswith(s.rstrip(os.sep) + os.sep) or s.startswith(real.rstrip(os.sep) + os.sep):
      raise DestinationError(f"{dst} is (or is inside, or holds) the source {src}; choose another output directory")
  if os.path.lexists(dst) and not os.path.isdir(dst):
    raise DestinationError(f"{dst} exists and is not a directory; choose a new output directory")
  if os.path.isdir(dst):
    found = [m for m in RUN_MARKERS if os.path.lexists(os.path.join(dst, m))]
    if found:
      raise DestinationError(f"{dst} is a training run ({found[0]}); choose a new output directory")
    if os.listdir(dst) and not overwrite:
      raise DestinationError(f"{dst} is not empty; choose a new or empty output directory, or pass --overwrite "
                             "to replace what is there (nothing was written)")


@contextlib.contextmanager
def staged(dst: str) -> Iterator[str]:
  """A temporary directory to write the output into; renamed to DST when the block succeeds
  (DST, if it exists, was checked by `check_destination` and is replaced), removed if not."""
  parent = os.path.dirname(os.path.abspath(dst)) or "."
  os.makedirs(parent, exist_ok=True)
  tmp = os.path.join(parent, f".{os.path.basename(os.path.abspath(dst))}.partial-{os.getpid()}")
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  try:
    yield tmp
    if os.path.isdir(dst):
      old = tmp + ".old"
      os.rename(dst, old)
      os.rename(tmp, dst)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.rename(tmp, dst)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
