"""Where a task's raw examples come from: in-memory lists, generator functions, JSONL/TSV
files, or any `seqio.DataSource` (TFDS, `FunctionDataSource`, ...).

Every source is adapted to one small interface, `ExampleSource`: named splits, each an
iterable of python dicts (str values, lists of str for options), read lazily and again
on every pass. `as_example_source` does the adapting for `register_flan_task`.
"""
from __future__ import annotations

import csv
import functools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, Union

from flan_jax.tasks import storage

Example = dict[str, Any]
SplitData = Union[Sequence[Example], Callable[[], Iterable[Example]]]


class ExampleSource(Protocol):
  """Raw examples by split, re-readable, in a fixed order."""

  @property
  def splits(self) -> tuple[str, ...]: ...

  def examples(self, split: str) -> Iterator[Example]: ...

  def num_examples(self, split: str) -> int: ...


def _check_split(source: ExampleSource, split: str) -> None:
  if split not in source.splits:
    raise ValueError(f"{source!r} has no split {split!r}; it has {list(source.splits)}")


class _CountingSource:
  """Counts a split by reading it once, and remembers the count."""

  @functools.cache
  def num_examples(self, split: str) -> int:
    return sum(1 for _ in self.examples(split))


class InMemorySource(_CountingSource):
  """Examples held in python: per split a list of dicts or a function yielding dicts.

  A function (e.g. a generator function) is called anew on every pass, so it must yield
  the same examples in the same order each time.
  """

  def __init__(self, data: Mapping[str, SplitData]):
    for split, value in data.items():
      if not (callable(value) or isinstance(value, Sequence)):
        raise TypeError(f"split {split!r}: expected a list of dicts or a function returning "
                        f"an iterable of dicts, got {type(value).__name__} (a generator object "
                        "can be read only once: pass the generator function instead)")
    self._data = dict(data)

  @property
  def splits(self) -> tuple[str, ...]:
    return tuple(self._data)

  def examples(self, split: str) -> Iterator[Example]:
    _check_split(self, split)
    value = self._data[split]
    yield from (value() if callable(value) else value)

  def num_examples(self, split: str) -> int:
    value = self._data.get(split)
    return len(value) if isinstance(value, Sequence) else super().num_examples(split)

  def __repr__(self):
    return f"InMemorySource(splits={list(self.splits)})"


def _as_paths(files: Mapping[str, str | os.PathLike | Sequence[str | os.PathLike]]):
  return {split: [os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike))
                                         else paths)]
          for split, paths in files.items()}


class JsonlSource(_CountingSource):
  """One JSON object per line; per split one file or a list of files read in order."""

  def __init__(self, files: Mapping[str, Any]):
    self._files = _as_paths(files)

  @property
  def splits(self) -> tuple[str, ...]:
    return tuple(self._files)

  def examples(self, split: str) -> Iterator[Example]:
    _check_split(self, split)
    for path in self._files[split]:
      with storage.open(path) as f:
        for lineno, line in enumerate(f, 1):
          if not line.strip():
            continue
          try:
            row = json.loads(line)
          except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{lineno}: not valid JSON ({e}); each line of a JSONL "
                             "file must hold one JSON object") from None
          if not isinstance(row, dict):
            raise ValueError(f"{path}:{lineno}: expected a JSON object, got "
                             f"{type(row).__name__}")
          yield row

  def __repr__(self):
    return f"JsonlSource({self._files})"


class TsvSource(_CountingSource):
  """Tab-separated rows. Column names come from the first row unless `fieldnames` is given.

  list_fields: columns holding lists (e.g. answer options), split on `list_separator`.
  """

  def __init__(self, files: Mapping[str, Any], *, fieldnames: Sequence[str] | None = None,
               list_fields: Sequence[str] = (), list_separator: str = "|",
               delimiter: str = "\t"):
    self._files = _as_paths(files)
    self._fieldnames = list(fieldnames) if fieldnames else None
    self._list_fields = tuple(list_fields)
    self._list_separator = list_separator
    self._delimiter = delimiter

  @property
  def splits(self) -> tuple[str, ...]:
    return tuple(self._files)

  def examples(self, split: str) -> Iterator[Example]:
    _check_split(self, split)
    for path in self._files[split]:
      with storage.open(path, newline="") as f:
        reader = csv.DictReader(f, fieldnames=self._fieldnames, delimiter=self._delimiter,
                                quoting=csv.QUOTE_NONE)
        for row in reader:
          if None in row or None in row.values():
            raise ValueError(f"{path}:{reader.line_num}: expected {len(reader.fieldnames)} "
                             f"columns {reader.fieldnames}, got a row with a different count")
          for name in self._list_fields:
            row[name] = row[name].split(self._list_separator)
          yield row

  def __repr__(self):
    return f"TsvSource({self._files})"


def _to_python(value):
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if hasattr(value, "tolist"):  # numpy scalars and arrays
    return _to_python(value.tolist())
  if isinstance(value, list):
    return [_to_python(v) for v in value]
  if isinstance(value, dict):
    return {k: _to_python(v) for k, v in value.items()}
  return value


class SeqioSource(_CountingSource):
  """Adapts a `seqio.DataSource`: its tf.data examples become python dicts of str."""

  def __init__(self, source):
    self._source = source

  @property
  def splits(self) -> tuple[str, ...]:
    return tuple(self._source.splits)

  def examples(self, split: str) -> Iterator[Example]:
    _check_split(self, split)
    ds = self._source.get_dataset(split=split, shuffle=False)
    for row in ds.as_numpy_iterator():
      yield _to_python(row)

  def num_examples(self, split: str) -> int:
    n = self._source.num_input_examples(split)
    return n if n is not None else super().num_examples(split)

  def __repr__(self):
    return f"SeqioSource({self._source!r})"


def _is_paths(value) -> bool:
  if isinstance(value, (str, os.PathLike)):
    return True
  return (isinstance(value, (list, tuple)) and bool(value)
          and all(isinstance(p, (str, os.PathLike)) for p in value))


_FILE_SOURCES = {".jsonl": JsonlSource, ".tsv": TsvSource}
FILE_SOURCES = (JsonlSource, TsvSource)  # sources read from a user's files


def as_example_source(source) -> ExampleSource:
  """Adapts what `register_flan_task` accepts to an `ExampleSource`.

  Accepted: an `ExampleSource`; a `seqio.DataSource`; a mapping split -> list of dicts or
  function yielding dicts; a mapping split -> path(s) of .jsonl/.tsv files.
  """
  if all(hasattr(source, a) for a in ("splits", "examples", "num_examples")):
    return source
  if hasattr(source, "get_dataset") and hasattr(source, "list_shards"):
    return SeqioSource(source)
  if isinstance(source, Mapping) and source:
    if all(_is_paths(v) for v in source.values()):
      files = _as_paths(source)
      exts = {os.path.splitext(p)[1].lower() for ps in files.values() for p in ps}
      if len(exts) == 1 and exts <= set(_FILE_SOURCES):
        return _FILE_SOURCES[exts.pop()](files)
      raise ValueError(f"cannot tell the format of files with extensions {sorted(exts)}; "
                       f"use one of {sorted(_FILE_SOURCES)} or build a JsonlSource/TsvSource")
    return InMemorySource(source)
  raise TypeError(f"unsupported task source {type(source).__name__}: pass a seqio.DataSource, "
                  "a dict split -> list of example dicts (or a function yielding them), "
                  "or a dict split -> .jsonl/.tsv path(s)")
