"""Downloads and archives, safely: a URL fetched to a file atomically (`download`), and a tar or
zip unpacked only after every member is checked (`unpack`): a member that is absolute, climbs
out with '..' or links out of the tree is reported by archive and member, and nothing of that
archive is unpacked."""
from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import tarfile
import urllib.request
import zipfile


def download(url: str, dest: pathlib.Path, timeout: float) -> str | None:
  """Fetches `url` to `dest` atomically; None on success, else why not."""
  dest.parent.mkdir(parents=True, exist_ok=True)
  tmp = dest.with_name(dest.name + ".part")
  try:
    with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
      while chunk := r.read(1 << 20):
        f.write(chunk)
  except Exception as e:  # pylint: disable=broad-except
    tmp.unlink(missing_ok=True)
    return f"{url}: {type(e).__name__}: {str(e)[:200]}"
  os.replace(tmp, dest)
  return None


def fetch_files(what: str, files: dict[pathlib.Path, str], timeout: float) -> list[str]:
  failures = []
  for dest, url in files.items():
    if not dest.is_file():
      why = download(url, dest, timeout)
      if why:
        failures.append(f"{what}: {why}")
  return failures


class UnsafeArchiveError(ValueError):
  """An archive member would land outside the directory it is unpacked into."""


def member_problem(name: str) -> str | None:
  """Why an archive member's name would leave the directory it is unpacked into, or None."""
  parts = name.replace("\\", "/").split("/")
  if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
    return "is an absolute path"
  if ".." in parts:
    return "climbs out with '..'"
  return None


def check_archive(archive: pathlib.Path, dest: pathlib.Path) -> None:
  """Raises UnsafeArchiveError naming the archive and the first member that is an absolute
  path, climbs out with '..', or (tar: through the tarfile `data` filter) is a link out of
  `dest` or a device. Nothing is written."""
  if zipfile.is_zipfile(archive):
    with zipfile.ZipFile(archive) as z:
      for info in z.infolist():
        why = member_problem(info.filename)
        if why:
          raise UnsafeArchiveError(f"{archive}: member {info.filename!r} {why}; refusing to "
                                   f"unpack it into {dest}")
    return
  with tarfile.open(archive) as t:
    for member in t:
      why = member_problem(member.name)  # the data filter would only strip a leading '/'
      if not why:
        try:
          tarfile.data_filter(member, str(dest))
        except tarfile.FilterError as e:
          why = f"is unsafe ({e})"
      if why:
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} {why}; refusing to unpack "
                                 f"it into {dest}")


def unpack(archive: pathlib.Path, dest: pathlib.Path) -> None:
  """Unpacks a downloaded tar or zip into `dest` after checking every member
  (`_check_archive`), tar members through the `data` extraction filter; then deletes the
  archive. An unsafe archive is kept, unpacked nowhere, and reported."""
  check_archive(archive, dest)
  dest.mkdir(parents=True, exist_ok=True)
  if zipfile.is_zipfile(archive):
    with zipfile.ZipFile(archive) as z:  # zipfile writes no links; names checked above
      z.extractall(dest)
  else:
    with tarfile.open(archive) as t:
      t.extractall(dest, filter="data")
  archive.unlink()


def unpack_or_why(archive: pathlib.Path, dest: pathlib.Path) -> str | None:
  """`unpack`; None on success, else why not (an unsafe or unreadable archive)."""
  try:
    unpack(archive, dest)
  except UnsafeArchiveError as e:
    return str(e)
  except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
    return f"{archive}: cannot unpack: {type(e).__name__}: {e}"
  return None


def sha256(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    while chunk := f.read(1 << 20):
      digest.update(chunk)
  return digest.hexdigest()


def extract_bigbench_tasks(archive: pathlib.Path, dest: pathlib.Path) -> int:
  """Writes the `task.json` files under `bigbench/benchmark_tasks/` of a bigbench source
  archive to `dest/<task>[/<subtask>]/task.json` (written aside, renamed into place);
  returns how many. Only regular files are written, each to a path built from its checked
  name: a task.json member that is absolute, climbs out with '..', or is a link raises
  UnsafeArchiveError naming it, and nothing lands in `dest`. Other members are skipped."""
  marker = "bigbench/benchmark_tasks/"
  tmp = dest.with_name(dest.name + ".part")
  shutil.rmtree(tmp, ignore_errors=True)
  n = 0
  try:
    with tarfile.open(archive, "r|*") as t:
      for member in t:
        _, found, rel = member.name.partition(marker)
        if not found or pathlib.PurePosixPath(rel).name != "task.json":
          continue
        why = member_problem(member.name) or member_problem(rel)
        if why or not member.isfile():
          raise UnsafeArchiveError(
              f"{archive}: member {member.name!r} {why or 'is a link or special file'}; "
              f"refusing to unpack it into {dest}")
        target = tmp.joinpath(*pathlib.PurePosixPath(rel).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with t.extractfile(member) as src, open(target, "wb") as out:
          shutil.copyfileobj(src, out)
        n += 1
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  if not n:
    shutil.rmtree(tmp, ignore_errors=True)
    raise ValueError(f"{archive}: no {marker}*/task.json members; not a bigbench source archive")
  shutil.rmtree(dest, ignore_errors=True)
  os.replace(tmp, dest)
  return n
