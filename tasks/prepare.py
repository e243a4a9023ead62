"""`flan-jax data prepare COLLECTION --data_dir=D`: fetch and cache a collection's data.

Run on a machine with network access; training then works offline from D.

  niv2    git clone of allenai/natural-instructions into D/natural-instructions, the
          task listing D/niv2/niv2_tasks.txt, and each task's languages and category (from
          its file's Input_language, Output_language, Categories) in
          D/niv2/niv2_task_info.tsv
  muffin  TFDS `download_and_prepare` into D/tfds for the datasets TFDS has, then
          D/muffin/<task>/{train,validation}.jsonl in the family's fields through
          `collections/tfds_converters.py`; the other six (Taskmaster, CodeContests,
          DrRepair) from their releases through `collections/muffin_extras.py`
  t0sf    each P3 prompt-task from the Hugging Face hub (bigscience/P3, one config per
          task) into D/t0sf/<task>/{train,validation}.jsonl as rendered inputs/targets
  cot     the Flan CoT TSVs from the FLAN repository into D/cot/<dataset>_train.tsv
  mmlu, bbh, tydiqa, mgsm
          the held-out benchmarks (tasks/eval_suites.py) in their release layouts under
          D/<suite>/
  bigbench
          BIG-bench's task files (the offline BBH source) into
          D/bigbench/benchmark_tasks/<task>[/<subtask>]/task.json, taken from the
          bigbench==1.0.0 source archive found through the package index's simple API
          (pip's configured index, else PyPI); nothing is built or pip-installed.
          Not part of "all" (a 358 MB download; 1,041 task files, 1.7 GB).

Archives are unpacked only after every member is checked (tarfile's `data` filter; zip
names): a member that is absolute, climbs out with '..' or links out of the tree is
reported by archive and member, and nothing of that archive is unpacked.

D may be a URL of any filesystem tf.io.gfile supports (gs://BUCKET/flan): the data is
fetched into a local staging dir, then each file is copied aside and renamed into place
under D; training reads it from there (FLAN_JAX_DATA_DIR=gs://...).

Every item that could not be fetched is printed; the exit status is 1 if any failed.
Nothing here raises on a network failure.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable

from flan_jax.tasks import archives, package_index, storage
from flan_jax.tasks.collections import catalogue
from flan_jax.tasks.collections import muffin_extras
from flan_jax.tasks.collections import readers
from flan_jax.tasks.collections import tfds_converters

NIV2_REPO = "https://github.com/allenai/natural-instructions.git"
P3_DATASET = "bigscience/P3"
COT_URL = "https://raw.githubusercontent.com/google-research/FLAN/main/flan/v2/cot_data"
MMLU_URL = "https://people.eecs.berkeley.edu/~hendrycks/data.tar"
MMLU_COT_URL = "https://raw.githubusercontent.com/jasonwei20/flan-2/main/mmlu-cot.json"
BBH_URL = "https://github.com/suzgunmirac/BIG-Bench-Hard/archive/refs/heads/main.zip"
TYDIQA_URL = "https://storage.googleapis.com/tydiqa/v1.1"
MGSM_URL = "https://raw.githubusercontent.com/google-research/url-nlp/main/mgsm"
BIGBENCH_VERSION = "1.0.0"


def _niv2(root: pathlib.Path, timeout: float) -> list[str]:
  checkout = root / "natural-instructions"
  if not (checkout / "tasks").is_dir():
    try:
      proc = subprocess.run(["git", "clone", "--depth", "1", NIV2_REPO, str(checkout)],
                            capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
      return [f"niv2: git clone {NIV2_REPO} failed: {e}"]
    if proc.returncode != 0:
      return [f"niv2: git clone {NIV2_REPO} failed: {proc.stderr.strip()[-300:]}"]
  listing = catalogue.niv2_listing(root) or []
  (root / "niv2").mkdir(parents=True, exist_ok=True)
  (root / "niv2" / "niv2_tasks.txt").write_text("\n".join(listing) + "\n")
  entries = catalogue.entries("niv2", root=root)
  absent, info, failures = [], [], []
  for e in entries:
    path = readers.niv2_task_file(catalogue.niv2_task_path(root, e.dataset))
    if not path.is_file():
      absent.append(e.dataset)
      continue
    try:
      with open(path, encoding="utf-8") as f:
        task = json.load(f)
    except ValueError as err:
      task = err
    if not isinstance(task, dict):
      failures.append(f"niv2: {path}: not a natural-instructions task file ({task})")
      continue
    names = [*task.get("Input_language", ()), *task.get("Output_language", ())]
    category = " ".join(", ".join(task.get("Categories") or ["NIv2"]).split())
    info.append(f"{e.dataset}\t{catalogue.language_codes(names)}\t{category}\n")
  out = root / catalogue.NIV2_INFO_FILE
  tmp = out.with_suffix(".tmp")
  tmp.write_text("".join(info), encoding="utf-8")
  os.replace(tmp, out)
  print(f"niv2: task files for {len(entries) - len(absent)} of the {len(entries)} "
        f"catalogue tasks; their languages and categories in {out}")
  if absent:
    failures.append(f"niv2: no task file in {checkout / 'tasks'} for {len(absent)} catalogue "
                    f"task(s): {', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''}")
  return failures


def _write_jsonl(path: pathlib.Path, rows) -> int:
  """Writes rows to `path` atomically (a temporary file renamed into place)."""
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(".jsonl.tmp")
  n = 0
  with open(tmp, "w", encoding="utf-8") as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")
      n += 1
  os.replace(tmp, path)
  return n


def _write_task(out: pathlib.Path, train: Callable, validation: Callable | None,
                holdout_every: int = 10) -> dict[str, int]:
  """Writes `out/{train,validation}.jsonl` from functions returning rows; without a
  validation source, every `holdout_every`-th train row is held out (`readers.holdout`).
  Returns the number of rows per split."""
  if validation is None:
    def part(split, read=train):
      return lambda: (r for i, r in enumerate(read())
                      if readers.holdout(i, holdout_every) == split)
    train, validation = part("train"), part("validation")
  return {"train": _write_jsonl(out / "train.jsonl", train()),
          "validation": _write_jsonl(out / "validation.jsonl", validation())}


def convert_tfds_task(entry: catalogue.Entry, builder, root: pathlib.Path) -> dict[str, int]:
  """Writes `<root>/muffin/<task>/{train,validation}.jsonl` from a prepared TFDS builder
  through the task's converter; returns the number of rows per split."""
  from flan_jax.tasks import sources  # pylint: disable=g-import-not-at-top
  convert = tfds_converters.converter_for(entry)
  names = {k: list(f.names) for k, f in builder.info.features.items() if hasattr(f, "names")}
  train = tfds_converters.TRAIN_SPLIT.get(entry.dataset, "train")
  validation = tfds_converters.VALIDATION_SPLIT.get(entry.dataset, "validation")
  available = set(builder.info.splits or ())

  def rows(split):
    def read():
      for ex in builder.as_dataset(split=split, shuffle_files=False).as_numpy_iterator():
        row = convert(sources._to_python(ex), names)  # pylint: disable=protected-access
        if row is not None:
          yield row
    return read

  has_validation = not available or validation in available  # (mock data lists no splits)
  return _write_task(root / entry.collection / entry.name, rows(train),
                     rows(validation) if has_validation else None)


def _tfds(collection: str, root: pathlib.Path) -> list[str]:
  failures = []
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    return [f"{collection}: tensorflow_datasets is not installed ({e})"]
  for e in catalogue.entries(collection):
    target = root / collection / e.name
    if (target / "train.jsonl").is_file() or e.dataset in muffin_extras.DATASETS:
      continue
    if not e.tfds_name:
      failures.append(f"{e.name}: no TFDS source for dataset {e.dataset!r}")
      continue
    if tfds_converters.converter_for(e) is None:
      failures.append(f"{e.name}: no converter from TFDS {e.tfds_name} to the "
                      f"{e.family!r} fields yet")
      continue
    try:
      builder = tfds.builder(e.tfds_name, data_dir=str(root / "tfds"))
      builder.download_and_prepare()
      counts = convert_tfds_task(e, builder, root)
    except Exception as err:  # pylint: disable=broad-except
      failures.append(f"{e.name}: TFDS {e.tfds_name} failed: {type(err).__name__}: "
                      f"{str(err)[:200]}")
      continue
    print(f"{e.name}: {counts['train']} train, {counts['validation']} validation rows")
  return failures


def _write_keyed(outputs: dict[str, pathlib.Path],
                 rows: Iterable[tuple[str, str, dict]]) -> dict[str, dict[str, int]]:
  """Writes (task, key, row) triples in one pass to `outputs[task]/{train,validation}.jsonl`,
  the split chosen by a hash of the key (`muffin_extras.is_validation`). Files are written
  aside and renamed into place only when all are complete. Returns rows per task and split."""
  files, counts = {}, {t: {"train": 0, "validation": 0} for t in outputs}
  tmp = lambda task, split: outputs[task] / f"{split}.jsonl.tmp"
  try:
    for task, key, row in rows:
      split = "validation" if muffin_extras.is_validation(key) else "train"
      if (task, split) not in files:
        outputs[task].mkdir(parents=True, exist_ok=True)
        files[task, split] = open(tmp(task, split), "w", encoding="utf-8")
      files[task, split].write(json.dumps(row, ensure_ascii=False) + "\n")
      counts[task][split] += 1
  except BaseException:
    for (task, split), f in files.items():
      f.close()
      tmp(task, split).unlink(missing_ok=True)
    raise
  for (task, split), f in files.items():
    f.close()
    os.replace(tmp(task, split), outputs[task] / f"{split}.jsonl")
  return counts


def _report(counts: dict[str, dict[str, int]], what: str) -> list[str]:
  failures = []
  for task, n in counts.items():
    if n["train"]:
      print(f"{task}: {n['train']} train, {n['validation']} validation rows")
    else:
      failures.append(f"{task}: no rows from {what}")
  return failures


def _taskmaster(root: pathlib.Path, timeout: float) -> list[str]:
  out = {"muffin_task_master": root / "muffin" / "muffin_task_master"}
  if (out["muffin_task_master"] / "train.jsonl").is_file():
    return []
  base = root / "taskmaster"
  failures = archives.fetch_files("task_master", {base / f: f"{muffin_extras.TASKMASTER_URL}/{f}"
                                          for f in muffin_extras.TASKMASTER_FILES}, timeout)
  def rows():
    for f in muffin_extras.TASKMASTER_FILES:
      if (base / f).is_file():
        try:
          conversations = json.loads((base / f).read_text(encoding="utf-8"))
        except ValueError as err:
          raise ValueError(f"{base / f}: not Taskmaster JSON ({err})") from err
        for key, row in muffin_extras.taskmaster_rows(conversations):
          yield "muffin_task_master", key, row
  try:
    counts = _write_keyed(out, rows())
  except ValueError as err:
    return failures + [f"task_master: {err}"]
  return failures + _report(counts, f"Taskmaster under {base}")


def _load_code_contests(cache_dir: str):
  import datasets  # pylint: disable=g-import-not-at-top
  return datasets.load_dataset(muffin_extras.CODE_CONTESTS, cache_dir=cache_dir)


def _code_contests(root: pathlib.Path) -> list[str]:
  out = root / "muffin" / "muffin_dmcc_python"
  if (out / "train.jsonl").is_file():
    return []
  try:
    data = _load_code_contests(str(root / "hf"))
  except Exception as err:  # pylint: disable=broad-except
    return [f"muffin_dmcc_python: {muffin_extras.CODE_CONTESTS} failed: "
            f"{type(err).__name__}: {str(err)[:200]}"]
  def rows(split):
    return lambda: (r for r in map(muffin_extras.code_contests_row, data[split]) if r)
  counts = _write_task(out, rows("train"), rows("valid") if "valid" in data else None)
  return _report({"muffin_dmcc_python": counts}, muffin_extras.CODE_CONTESTS)


def _dr_repair(root: pathlib.Path, timeout: float) -> list[str]:
  out = {t: root / "muffin" / f"muffin_{t}" for t in muffin_extras.DR_REPAIR_TASKS}
  if all((d / "train.jsonl").is_file() for d in out.values()):
    return []
  base = root / "dr_repair"
  failures = []
  for name in muffin_extras.DR_REPAIR_ARCHIVES:
    if (base / name.removesuffix(".zip")).is_dir():
      continue
    why = archives.download(f"{muffin_extras.DR_REPAIR_URL}/{name}", base / name, timeout)
    if not why:
      why = archives.unpack_or_why(base / name, base)
    if why:
      failures.append(f"dr_repair: {why}")
  def rows():
    for case in muffin_extras.read_repair_cases(base):
      task, key, row = muffin_extras.repair_example(case)
      yield f"muffin_{task}", key, row
  try:
    counts = _write_keyed({f"muffin_{t}": d for t, d in out.items()}, rows())
  except ValueError as err:  # a file in neither DrRepair format, named in the message
    return failures + [f"dr_repair: {err}"]
  return failures + _report(counts, f"DrRepair under {base}")


def _muffin(root: pathlib.Path, timeout: float) -> list[str]:
  return (_tfds("muffin", root) + _taskmaster(root, timeout) + _code_contests(root)
          + _dr_repair(root, timeout))


def _load_p3(config: str, cache_dir: str):
  import datasets  # pylint: disable=g-import-not-at-top
  return datasets.load_dataset(P3_DATASET, name=config, cache_dir=cache_dir)


def p3_row(ex: dict) -> dict:
  """A P3 example, already rendered through its prompt: kept as inputs/targets (the
  renderer passes such rows through), with the answer choices as options."""
  row = {"inputs": ex["inputs_pretokenized"].strip(),
         "targets": ex["targets_pretokenized"].strip()}
  if ex.get("answer_choices"):
    row["options"] = [c.strip() for c in ex["answer_choices"]]
  return row


def _p3(root: pathlib.Path) -> list[str]:
  failures = []
  for e in catalogue.entries("t0sf"):
    out = root / "t0sf" / e.name
    if (out / "train.jsonl").is_file():
      continue
    config = e.name[len("t0sf_"):]
    try:
      data = _load_p3(config, str(root / "hf"))
    except Exception as err:  # pylint: disable=broad-except
      failures.append(f"{e.name}: {P3_DATASET} config {config!r} failed: "
                      f"{type(err).__name__}: {str(err)[:200]}")
      continue
    rows = lambda split, data=data: map(p3_row, data[split])
    _write_task(out, lambda: rows("train"),
                (lambda: rows("validation")) if "validation" in data else None)
  return failures


def _cot(root: pathlib.Path, timeout: float) -> list[str]:
  return archives.fetch_files("cot", {root / "cot" / f"{e.dataset}_train.tsv":
                              f"{COT_URL}/{e.dataset}_train.tsv"
                              for e in catalogue.entries("cot")}, timeout)


def _mmlu(root: pathlib.Path, timeout: float) -> list[str]:
  """hendrycks/test's CSV release and flan-2's mmlu-cot.json (the CoT prompts)."""
  out = root / "mmlu"
  problems = []
  if not ((out / "data" / "test").is_dir() or (out / "test").is_dir()):
    archive = out / "data.tar"
    why = archives.download(MMLU_URL, archive, timeout)
    why = why or archives.unpack_or_why(archive, out)
    if why:
      problems.append(f"mmlu: {why}")
  return problems + archives.fetch_files("mmlu", {out / "mmlu-cot.json": MMLU_COT_URL}, timeout)


def _bbh(root: pathlib.Path, timeout: float) -> list[str]:
  out = root / "bbh"
  if (out / "cot-prompts").is_dir():
    return []
  archive = out / "bbh.zip"
  why = archives.download(BBH_URL, archive, timeout)
  if why:
    return [f"bbh: {why} (offline BBH from BIG-bench's task files still works: "
            "flan-jax data prepare bigbench)"]
  why = archives.unpack_or_why(archive, out / "_unpacked")
  if why:
    return [f"bbh: {why}"]
  top = next((out / "_unpacked").iterdir())
  for sub in ("bbh", "cot-prompts"):
    if (top / sub).is_dir():
      shutil.move(str(top / sub), str(out / sub))
  shutil.rmtree(out / "_unpacked")
  return []


def _bigbench(root: pathlib.Path, timeout: float, index_urls=None) -> list[str]:
  out = root / "bigbench"
  tasks_dir = out / "benchmark_tasks"
  if any(tasks_dir.glob("*/task.json")):
    return []
  filename = f"bigbench-{BIGBENCH_VERSION}.tar.gz"
  tried, found = [], None
  for index in index_urls or package_index.pip_index_urls():
    try:
      files = package_index.index_files(index, "bigbench", timeout)
    except Exception as e:  # pylint: disable=broad-except
      tried.append(f"{index}: {type(e).__name__}: {str(e)[:200]}")
      continue
    if filename in files:
      found = files[filename]
      break
    tried.append(f"{index}: no {filename} in its bigbench listing")
  if found is None:
    return [f"bigbench: {'; '.join(tried)}"]
  url, sha256 = found
  archive = out / filename
  why = archives.download(url, archive, timeout)
  if why:
    return [f"bigbench: {why}"]
  if sha256 and archives.sha256(archive) != sha256:
    archive.unlink()
    return [f"bigbench: {url}: its sha256 differs from the index's ({sha256}); deleted"]
  try:
    n = archives.extract_bigbench_tasks(archive, tasks_dir)
  except (ValueError, tarfile.TarError, EOFError, OSError) as e:
    return [f"bigbench: {e}"]
  archive.unlink()
  print(f"bigbench: {n} task files from {url} in {tasks_dir}")
  return []


def _tydiqa(root: pathlib.Path, timeout: float) -> list[str]:
  return archives.fetch_files("tydiqa", {root / "tydiqa" / f"tydiqa-goldp-v1.1-{s}.json":
                                 f"{TYDIQA_URL}/tydiqa-goldp-v1.1-{s}.json"
                                 for s in ("train", "dev")}, timeout)


def _mgsm(root: pathlib.Path, timeout: float) -> list[str]:
  """The 11 test TSVs (10 languages and English) and the native CoT exemplars (exemplars.py,
  read as data by eval_suites.read_mgsm_exemplars, never run)."""
  from flan_jax.tasks import eval_suites  # pylint: disable=g-import-not-at-top
  files = {root / "mgsm" / f"mgsm_{lang}.tsv": f"{MGSM_URL}/mgsm_{lang}.tsv"
           for lang in (*eval_suites.MGSM_LANGUAGES, eval_suites.MGSM_ENGLISH)}
  files[root / "mgsm" / "exemplars.py"] = f"{MGSM_URL}/exemplars.py"
  return archives.fetch_files("mgsm", files, timeout)


EVAL_SUITES = ("mmlu", "bbh", "tydiqa", "mgsm")
CHOICES = (*catalogue.COLLECTIONS, *EVAL_SUITES, "bigbench")
ALL = (*catalogue.COLLECTIONS, *EVAL_SUITES)  # bigbench (a 358 MB archive) only when named


def _writable_dir(root: pathlib.Path) -> None:
  """Creates the data directory, or says in one line why it cannot be written (a file there,
  a read-only file system, no permission) before anything is fetched."""
  if root.exists() and not root.is_dir():
    raise ValueError(f"--data_dir {root} is a file, not a directory; give a directory to fetch into")
  try:
    root.mkdir(parents=True, exist_ok=True)
    probe = root / f".flan_jax_write_probe_{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()
  except OSError as e:
    raise ValueError(f"--data_dir {root} cannot be written: {e.strerror or e} (errno {e.errno}); give a "
                     "writable directory") from None


def prepare(collection: str, data_dir=None, *, timeout: float = 600) -> list[str]:
  """Fetches one collection or evaluation suite (or "all"); returns what could not be
  fetched."""
  root = catalogue.data_dir(data_dir)
  if storage.is_url(root):  # fetch into a local staging dir, then upload file by file
    with tempfile.TemporaryDirectory(prefix="flan_jax_prepare_") as staging:
      failures = prepare(collection, staging, timeout=timeout)
      uploaded = storage.upload_tree(pathlib.Path(staging), root)
    print(f"{uploaded} file(s) written to {root}")
    return failures
  _writable_dir(root)
  names = list(ALL) if collection == "all" else [collection]
  steps = {"niv2": _niv2, "cot": _cot, "muffin": _muffin,
           "t0sf": lambda r, t: _p3(r), "mmlu": _mmlu, "bbh": _bbh, "tydiqa": _tydiqa,
           "mgsm": _mgsm, "bigbench": _bigbench}
  failures = []
  for c in names:
    if c not in steps:
      raise ValueError(f"unknown collection {c!r}; use one of {list(CHOICES)} or all")
    failures += steps[c](root, timeout)
  return failures
