"""Example sources over the data dir (all `sources.ExampleSource`s, all lazy).

Constructing a source touches no data; `splits` are declared up front so that
registering thousands of tasks stays cheap. Data is read on `examples()` /
`num_examples()`, i.e. when a dataset (or a mixture rate) is built, and a missing file
raises `FileNotFoundError` naming the task, the data dir and the command that fetches it.

  TaskFilesSource     <data_dir>/<collection>/<task>/<split>.jsonl (what `data prepare`
                      writes; canonical fields per template family)
  TfdsSource          a TFDS dataset already prepared under a data dir
  HfSource            a Hugging Face dataset saved with `save_to_disk`, or json/parquet
  NIv2TaskSource      one natural-instructions task JSON (Definition, Positive Examples,
                      Instances)
  CotTsvSource        a Flan CoT TSV (question, answer, rationale), split train/validation
  ExportSource        published Flan submixture exports (inputs, targets, task_name,
                      template_type) as JSONL or parquet
"""
from __future__ import annotations

import functools
import glob
import json
import os
import pathlib
from collections.abc import Callable, Iterator, Sequence

from flan_jax.tasks import sources
from flan_jax.tasks import storage


def missing_data(task: str, path, hint: str) -> FileNotFoundError:
  """The error for a task whose data file is absent: names the task, the path and the fix."""
  return FileNotFoundError(f"task {task!r}: no data at {path}; {hint} (the data dir is set "
                           "by $FLAN_JAX_DATA_DIR or --data_dir)")


class _Lazy(sources._CountingSource):  # pylint: disable=protected-access
  _splits: tuple[str, ...]

  @property
  def splits(self) -> tuple[str, ...]:
    return self._splits


def holdout(index: int, every: int) -> str:
  """The split of the `index`-th raw example when every `every`-th one is validation."""
  return "validation" if index % every == every - 1 else "train"


# Validation rows held out per task: a fixed small count (what evaluation needs), not a
# share of the data; a small task gives up at most a tenth of its rows.
NIV2_VALIDATION = 10
COT_VALIDATION = 25


def held_out(index: int, total: int, count: int) -> str:
  """The split of the `index`-th of `total` rows when the last `count` (at most a tenth
  of them, at least one when there are two) are validation."""
  n = min(count, max(1, total // 10)) if total >= 2 else 0
  return "validation" if index >= total - n else "train"


class TaskFilesSource(_Lazy):
  """JSONL files `<root>/<collection>/<task>/<split>.jsonl`."""

  def __init__(self, root, collection: str, task: str, splits=("train", "validation")):
    self._dir = storage.path(root) / collection / task
    self._task, self._collection, self._splits = task, collection, tuple(splits)

  def _path(self, split):
    path = self._dir / f"{split}.jsonl"
    if not path.is_file():
      raise missing_data(self._task, path, f"run `flan-jax data prepare {self._collection} "
                     f"--data_dir={self._dir.parent.parent}`")
    return path

  def examples(self, split):
    sources._check_split(self, split)  # pylint: disable=protected-access
    yield from sources.JsonlSource({split: self._path(split)}).examples(split)

  def __repr__(self):
    return f"TaskFilesSource({self._dir})"


def p3_fields(row: dict) -> dict:
  """A T0/P3 row as FLAN's T0 preprocessor reads it: the P3 prompt becomes `question` with
  each line break turned into a space, the target `answer` and each answer choice `options`
  without line breaks (flan/v2 preprocessors.t0). Rows that already carry `question` and
  `answer` get the same clean-up."""
  question = row["inputs"] if "inputs" in row else row.get("question", "")
  answer = row["targets"] if "targets" in row else row.get("answer", "")
  out = {"question": str(question).replace("\n", " ").strip(),
         "answer": str(answer).replace("\n", "").strip()}
  if row.get("options"):
    out["options"] = [str(o).replace("\n", "").strip() for o in row["options"]]
  return out


class P3TaskFilesSource(TaskFilesSource):
  """The JSONL files of a T0-SF task (rendered P3 prompts), read as FLAN's T0 tasks read P3:
  question / answer / options (`p3_fields`), for FLAN's T0 wrapper templates."""

  def examples(self, split):
    yield from map(p3_fields, super().examples(split))

  def __repr__(self):
    return f"P3TaskFilesSource({self._dir})"


class TfdsSource(_Lazy):
  """A TFDS dataset prepared under `data_dir`; `convert(example) -> dict` maps its
  features to the template family's fields (default: decode bytes, keep names)."""

  def __init__(self, name: str, data_dir, *, task: str = "", convert: Callable | None = None,
               split_map: dict[str, str] | None = None):
    self._name, self._data_dir, self._task = name, os.fspath(data_dir), task or name
    self._convert = convert or (lambda ex: ex)
    self._split_map = split_map or {"train": "train", "validation": "validation"}
    self._splits = tuple(self._split_map)

  @functools.cached_property
  def _builder(self):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    try:
      return tfds.builder(self._name, data_dir=self._data_dir)
    except Exception as e:  # pylint: disable=broad-except
      raise missing_data(self._task, f"{self._data_dir} (TFDS {self._name})",
                     f"run `flan-jax data prepare` ({e})") from None

  def examples(self, split):
    sources._check_split(self, split)  # pylint: disable=protected-access
    ds = self._builder.as_dataset(split=self._split_map[split], shuffle_files=False)
    for row in ds.as_numpy_iterator():
      yield self._convert(sources._to_python(row))  # pylint: disable=protected-access

  def num_examples(self, split):
    sources._check_split(self, split)  # pylint: disable=protected-access
    return self._builder.info.splits[self._split_map[split]].num_examples

  def __repr__(self):
    return f"TfdsSource({self._name!r}, data_dir={self._data_dir!r})"


class HfSource(_Lazy):
  """A Hugging Face dataset on disk: a `save_to_disk` directory (DatasetDict) or, per
  split, json/jsonl/parquet/arrow files matching `<path>/<split>*.<ext>`."""

  def __init__(self, path, *, task: str = "", convert: Callable | None = None,
               split_map: dict[str, str] | None = None):
    self._path, self._task = pathlib.Path(path), task or str(path)
    self._convert = convert or (lambda ex: ex)
    self._split_map = split_map or {"train": "train", "validation": "validation"}
    self._splits = tuple(self._split_map)

  @functools.cached_property
  def _dataset(self):
    try:
      import datasets  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError("HfSource needs `pip install flan_jax[data]` (datasets)") from e
    if (self._path / "dataset_dict.json").is_file():
      return datasets.load_from_disk(os.fspath(self._path))
    files = {}
    for split, name in self._split_map.items():
      for ext, kind in (("jsonl", "json"), ("json", "json"), ("parquet", "parquet"),
                        ("arrow", "arrow")):
        found = sorted(glob.glob(os.fspath(self._path / f"{name}*.{ext}")))
        if found:
          files[name] = (kind, found)
          break
    if not files:
      raise missing_data(self._task, self._path, "save it with datasets' save_to_disk or run "
                     "`flan-jax data prepare`")
    return {name: datasets.load_dataset(kind, data_files=found, split="train")
            for name, (kind, found) in files.items()}

  def examples(self, split):
    sources._check_split(self, split)  # pylint: disable=protected-access
    for row in self._dataset[self._split_map[split]]:
      yield self._convert(dict(row))

  def num_examples(self, split):
    return len(self._dataset[self._split_map[split]])

  def __repr__(self):
    return f"HfSource({self._path})"


def niv2_task_file(path):
  """The natural-instructions file for `<tasks dir>/<task id>.json`: that file if it exists,
  else the one file in the same folder whose name maps to the id the way FLAN's task
  metadata (and so our catalogue) names it: `-` written `_` (41 tasks, e.g.
  task105_story_cloze-rocstories_sentence_generation) or the name cut at its first `.`
  (10 tasks, e.g. task074_squad1 for task074_squad1.1_question_generation). Else `path`."""
  if path.is_file() or not path.parent.is_dir():
    return path
  task_id = path.name.removesuffix(".json")
  number = task_id.split("_", 1)[0]
  for candidate in sorted(path.parent.glob(f"{glob.escape(number)}_*.json")):
    name = candidate.name.removesuffix(".json")
    if name.replace("-", "_") == task_id or name.split(".")[0] == task_id:
      return candidate
  return path


class NIv2TaskSource(_Lazy):
  """One natural-instructions task file. Fields: `definition`, `input`, `output` (the
  first reference), `outputs`, `id`, `positive_examples` (input, output, explanation of
  each) and `examples_text` (the first two written out). The last `NIV2_VALIDATION`
  instances (at most a tenth) are validation."""

  def __init__(self, path, task: str = "", holdout_count: int = NIV2_VALIDATION):
    self._path, self._task = storage.path(path), task or str(path)
    self._holdout = holdout_count
    self._splits = ("train", "validation")

  @functools.cached_property
  def _task_json(self) -> dict:
    path = niv2_task_file(self._path)
    if not path.is_file():
      raise missing_data(self._task, self._path, "run `flan-jax data prepare niv2`")
    self._path = path
    with storage.open(self._path) as f:
      task = json.load(f)
    for key in ("Definition", "Instances"):
      if key not in task:
        raise ValueError(f"{self._path}: not a natural-instructions task file (no {key!r})")
    return task

  def examples(self, split):
    sources._check_split(self, split)  # pylint: disable=protected-access
    task = self._task_json
    definition = " ".join(task["Definition"]) if isinstance(task["Definition"], list) \
        else str(task["Definition"])
    positives = [{"input": str(p.get("input", "")), "output": _first(p.get("output", "")),
                  "explanation": str(p.get("explanation", ""))}
                 for p in task.get("Positive Examples", []) if isinstance(p, dict)]
    shown = "\n\n".join(f"Input: {p['input']}\nOutput: {p['output']}" for p in positives[:2])
    instances = task["Instances"]
    for i, inst in enumerate(instances):
      if held_out(i, len(instances), self._holdout) != split:
        continue
      outputs = inst["output"] if isinstance(inst["output"], list) else [inst["output"]]
      yield {"id": inst.get("id", f"{self._task}-{i}"), "definition": definition,
             "input": inst["input"], "output": outputs[0] if outputs else "",
             "outputs": outputs, "examples_text": shown, "positive_examples": positives}

  def __repr__(self):
    return f"NIv2TaskSource({self._path})"


def _first(output) -> str:
  return str(output[0] if isinstance(output, list) and output else output)


class CotTsvSource(_Lazy):
  """A Flan CoT TSV without header: question, answer, rationale (literal "\\n" in the
  question are line breaks). The last `COT_VALIDATION` rows (at most a tenth) are
  validation."""

  def __init__(self, path, task: str = "", holdout_count: int = COT_VALIDATION):
    self._path, self._task = storage.path(path), task or str(path)
    self._holdout = holdout_count
    self._splits = ("train", "validation")

  def examples(self, split):
    sources._check_split(self, split)  # pylint: disable=protected-access
    if not self._path.is_file():
      raise missing_data(self._task, self._path, "run `flan-jax data prepare cot`")
    with storage.open(self._path) as f:
      total = sum(1 for _ in f)
    with storage.open(self._path) as f:
      for i, line in enumerate(f):
        if held_out(i, total, self._holdout) != split or not line.strip():
          continue
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 3:
          raise ValueError(f"{self._path}:{i + 1}: expected 3 tab-separated columns "
                           f"(question, answer, rationale), got {len(parts)}")
        question, answer, rationale = (p.replace("\\n", "\n").strip() for p in parts)
        yield {"question": question, "answer": answer, "rationale": rationale}

  def __repr__(self):
    return f"CotTsvSource({self._path})"


class ExportSource(_Lazy):
  """Rows of the published Flan submixture exports: `inputs`, `targets`, `task_name`,
  `template_type` (e.g. zs_opt, fs_noopt), JSONL or parquet, optionally filtered."""

  def __init__(self, files: Sequence, *, task_names: Sequence[str] | None = None,
               template_types: Sequence[str] | None = None,
               splits=("train",)):
    self._files = [os.fspath(f) for f in files]
    self._task_names = set(task_names) if task_names else None
    self._template_types = set(template_types) if template_types else None
    self._splits = tuple(splits)

  def _rows(self) -> Iterator[dict]:
    for path in self._files:
      if path.endswith(".parquet"):
        try:
          import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
        except ImportError as e:
          raise ImportError("parquet exports need `pip install flan_jax[data]` (pyarrow)") from e
        for batch in pq.ParquetFile(path).iter_batches():
          yield from batch.to_pylist()
      else:
        yield from sources.JsonlSource({"x": path}).examples("x")

  def examples(self, split):
    sources._check_split(self, split)  # pylint: disable=protected-access
    for row in self._rows():
      for key in ("inputs", "targets"):
        if key not in row:
          raise ValueError(f"export row without {key!r}: has {sorted(row)}")
      if self._task_names is not None and row.get("task_name") not in self._task_names:
        continue
      if self._template_types is not None and row.get("template_type") not in self._template_types:
        continue
      yield row

  def __repr__(self):
    return f"ExportSource({self._files})"
