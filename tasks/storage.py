"""Paths to Flan data on a local disk or in object storage, read and written the same way.

A data or cache directory is a local path or a URL of any filesystem TensorFlow's
`tf.io.gfile` supports: `gs://bucket/flan`, `s3://...`, `hdfs://...`, `file:///abs/path`,
and the in-process `ram://...` the tests use. `path(x)` gives a `pathlib.Path` for a local
path and a `UrlPath` (the few `pathlib` methods the readers and writers use, over
`tf.io.gfile`) for a URL; `open`, `replace` and `exists` take either, or a string.
TensorFlow is imported only when a URL is used.
"""
from __future__ import annotations

import builtins
import fnmatch
import os
import pathlib


def is_url(value) -> bool:
  return "://" in str(value)


def _gfile():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile


class UrlPath:
  """`scheme://bucket/a/b` with the pathlib surface flan_jax uses, over `tf.io.gfile`."""

  def __init__(self, url: str):
    url = str(url)
    scheme, rest = url.split("://", 1)
    rest = rest.rstrip("/") if rest.strip("/") else rest
    self._url = f"{scheme}://{rest}"

  # names
  def __str__(self):
    return self._url

  def __fspath__(self):
    return self._url

  def __repr__(self):
    return f"UrlPath({self._url!r})"

  def __eq__(self, other):
    return isinstance(other, UrlPath) and other._url == self._url

  def __hash__(self):
    return hash(self._url)

  def __truediv__(self, part) -> "UrlPath":
    part = str(part).strip("/")
    return UrlPath(f"{self._url.rstrip('/')}/{part}") if part else self

  def joinpath(self, *parts) -> "UrlPath":
    out = self
    for p in parts:
      out = out / p
    return out

  @property
  def name(self) -> str:
    rest = self._url.split("://", 1)[1]
    return rest.rsplit("/", 1)[-1] if "/" in rest else ""

  @property
  def parent(self) -> "UrlPath":
    scheme, rest = self._url.split("://", 1)
    return UrlPath(f"{scheme}://{rest.rsplit('/', 1)[0]}") if "/" in rest else self

  @property
  def suffix(self) -> str:
    return os.path.splitext(self.name)[1]

  @property
  def stem(self) -> str:
    return os.path.splitext(self.name)[0]

  def with_suffix(self, suffix: str) -> "UrlPath":
    return self.parent / (self.stem + suffix)

  def with_name(self, name: str) -> "UrlPath":
    return self.parent / name

  # queries
  def exists(self) -> bool:
    return _gfile().exists(self._url)

  def is_dir(self) -> bool:
    return _gfile().isdir(self._url)

  def is_file(self) -> bool:
    g = _gfile()
    return g.exists(self._url) and not g.isdir(self._url)

  def iterdir(self):
    return [self / n.rstrip("/") for n in _gfile().listdir(self._url)]

  def glob(self, pattern: str):
    if "/" in pattern or "**" in pattern:
      return [UrlPath(p) for p in sorted(_gfile().glob(f"{self._url}/{pattern}"))]
    if not self.is_dir():
      return []
    return sorted((p for p in self.iterdir() if fnmatch.fnmatchcase(p.name, pattern)), key=str)

  # reading and writing
  def open(self, mode: str = "r", encoding=None, newline=None):  # pylint: disable=unused-argument
    return _gfile().GFile(self._url, mode)  # text modes are UTF-8

  def read_text(self, encoding=None) -> str:  # pylint: disable=unused-argument
    with self.open("r") as f:
      return f.read()

  def read_bytes(self) -> bytes:
    with self.open("rb") as f:
      return f.read()

  def write_text(self, text: str, encoding=None) -> int:  # pylint: disable=unused-argument
    with self.open("w") as f:
      f.write(text)
    return len(text)

  def write_bytes(self, data: bytes) -> int:
    with self.open("wb") as f:
      f.write(data)
    return len(data)

  def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:  # pylint: disable=unused-argument
    g = _gfile()
    if g.isdir(self._url) and not exist_ok:
      raise FileExistsError(self._url)
    g.makedirs(self._url)

  def unlink(self, missing_ok: bool = False) -> None:
    g = _gfile()
    if not g.exists(self._url):
      if missing_ok:
        return
      raise FileNotFoundError(self._url)
    g.remove(self._url)

  def replace(self, target) -> "UrlPath":
    """Moves this file onto `target` (object stores: copy, then delete)."""
    _gfile().rename(self._url, str(target), overwrite=True)
    return UrlPath(str(target))

  rename = replace


def path(value) -> pathlib.Path | UrlPath:
  """`value` as a path: a `UrlPath` for `scheme://...`, else a `pathlib.Path` (~ expanded)."""
  if isinstance(value, (pathlib.Path, UrlPath)):
    return value
  value = os.fspath(value)
  return UrlPath(value) if is_url(value) else pathlib.Path(os.path.expanduser(value))


def open(file, mode: str = "r", encoding: str | None = "utf-8", newline=None):  # pylint: disable=redefined-builtin
  """`builtins.open` for local files (text as `encoding`), `tf.io.gfile.GFile` for URLs."""
  if is_url(file):
    return UrlPath(os.fspath(file)).open(mode)
  if "b" in mode:
    return builtins.open(file, mode)
  return builtins.open(file, mode, encoding=encoding, newline=newline)


def replace(src, dst) -> None:
  """Atomic rename on a local disk; a copy-then-delete on object stores (the file appears
  whole under its final name either way)."""
  if is_url(src) or is_url(dst):
    _gfile().rename(os.fspath(src), os.fspath(dst), overwrite=True)
  else:
    os.replace(src, dst)


def exists(value) -> bool:
  return path(value).exists()


def size(value) -> int:
  """A file's size in bytes, local or URL."""
  if is_url(value):
    return int(_gfile().stat(os.fspath(value)).length)
  return os.path.getsize(os.fspath(value))


def makedirs(value) -> None:
  p = path(value)
  p.mkdir(parents=True, exist_ok=True)


def glob(pattern: str) -> list[str]:
  """Sorted matches of a glob pattern, local or URL."""
  if is_url(pattern):
    return sorted(_gfile().glob(pattern))
  import glob as glob_lib  # pylint: disable=g-import-not-at-top
  return sorted(glob_lib.glob(pattern))


def upload_tree(local: pathlib.Path, dest) -> int:
  """Copies every file under `local` to the same place under `dest` (a URL), each one
  written aside (`.NAME.tmp-PID`) and renamed into place, so that a reader never sees
  half a file and an interrupted upload leaves only whole files under their names (git's
  objects and TFDS's raw downloads stay behind). Returns how many files were written."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  dest = path(dest)
  n = 0
  def wanted(rel: pathlib.Path) -> bool:  # not git's objects, nor TFDS's raw downloads
    return ".git" not in rel.parts and rel.parts[:2] != ("tfds", "downloads")

  for src in sorted(p for p in local.rglob("*") if p.is_file() and wanted(p.relative_to(local))):
    target = dest.joinpath(*src.relative_to(local).parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    tf.io.gfile.copy(str(src), str(tmp), overwrite=True)
    replace(tmp, target)
    n += 1
  return n
