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

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable

from flan_jax.tasks import storage
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
BIGBENCH_DEFAULT_INDEX = "https://pypi.org/simple"


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
  failures = _fetch_files("task_master", {base / f: f"{muffin_extras.TASKMASTER_URL}/{f}"
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
    why = _download(f"{muffin_extras.DR_REPAIR_URL}/{name}", base / name, timeout)
    if not why:
      why = _unpack_or_why(base / name, base)
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


def _download(url: str, dest: pathlib.Path, timeout: float) -> str | None:
  """Fetches `url` to `dest` atomically; None on success, else why not."""
  import urllib.request  # pylint: disable=g-import-not-at-top
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


def _fetch_files(what: str, files: dict[pathlib.Path, str], timeout: float) -> list[str]:
  failures = []
  for dest, url in files.items():
    if not dest.is_file():
      why = _download(url, dest, timeout)
      if why:
        failures.append(f"{what}: {why}")
  return failures


def _cot(root: pathlib.Path, timeout: float) -> list[str]:
  return _fetch_files("cot", {root / "cot" / f"{e.dataset}_train.tsv":
                              f"{COT_URL}/{e.dataset}_train.tsv"
                              for e in catalogue.entries("cot")}, timeout)


class UnsafeArchiveError(ValueError):
  """An archive member would land outside the directory it is unpacked into."""


def _member_problem(name: str) -> str | None:
  """Why an archive member's name would leave the directory it is unpacked into, or None."""
  parts = name.replace("\\", "/").split("/")
  if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
    return "is an absolute path"
  if ".." in parts:
    return "climbs out with '..'"
  return None


def _check_archive(archive: pathlib.Path, dest: pathlib.Path) -> None:
  """Raises UnsafeArchiveError naming the archive and the first member that is an absolute
  path, climbs out with '..', or (tar: through the tarfile `data` filter) is a link out of
  `dest` or a device. Nothing is written."""
  import tarfile  # pylint: disable=g-import-not-at-top
  import zipfile  # pylint: disable=g-import-not-at-top
  if zipfile.is_zipfile(archive):
    with zipfile.ZipFile(archive) as z:
      for info in z.infolist():
        why = _member_problem(info.filename)
        if why:
          raise UnsafeArchiveError(f"{archive}: member {info.filename!r} {why}; refusing to "
                                   f"unpack it into {dest}")
    return
  with tarfile.open(archive) as t:
    for member in t:
      why = _member_problem(member.name)  # the data filter would only strip a leading '/'
      if not why:
        try:
          tarfile.data_filter(member, str(dest))
        except tarfile.FilterError as e:
          why = f"is unsafe ({e})"
      if why:
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} {why}; refusing to unpack "
                                 f"it into {dest}")


def _unpack(archive: pathlib.Path, dest: pathlib.Path) -> None:
  """Unpacks a downloaded tar or zip into `dest` after checking every member
  (`_check_archive`), tar members through the `data` extraction filter; then deletes the
  archive. An unsafe archive is kept, unpacked nowhere, and reported."""
  import tarfile  # pylint: disable=g-import-not-at-top
  import zipfile  # pylint: disable=g-import-not-at-top
  _check_archive(archive, dest)
  dest.mkdir(parents=True, exist_ok=True)
  if zipfile.is_zipfile(archive):
    with zipfile.ZipFile(archive) as z:  # zipfile writes no links; names checked above
      z.extractall(dest)
  else:
    with tarfile.open(archive) as t:
      t.extractall(dest, filter="data")
  archive.unlink()


def _unpack_or_why(archive: pathlib.Path, dest: pathlib.Path) -> str | None:
  """`_unpack`; None on success, else why not (an unsafe or unreadable archive)."""
  import tarfile  # pylint: disable=g-import-not-at-top
  import zipfile  # pylint: disable=g-import-not-at-top
  try:
    _unpack(archive, dest)
  except UnsafeArchiveError as e:
    return str(e)
  except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
    return f"{archive}: cannot unpack: {type(e).__name__}: {e}"
  return None


def _mmlu(root: pathlib.Path, timeout: float) -> list[str]:
  """hendrycks/test's CSV release and flan-2's mmlu-cot.json (the CoT prompts)."""
  out = root / "mmlu"
  problems = []
  if not ((out / "data" / "test").is_dir() or (out / "test").is_dir()):
    archive = out / "data.tar"
    why = _download(MMLU_URL, archive, timeout)
    why = why or _unpack_or_why(archive, out)
    if why:
      problems.append(f"mmlu: {why}")
  return problems + _fetch_files("mmlu", {out / "mmlu-cot.json": MMLU_COT_URL}, timeout)


def _bbh(root: pathlib.Path, timeout: float) -> list[str]:
  out = root / "bbh"
  if (out / "cot-prompts").is_dir():
    return []
  archive = out / "bbh.zip"
  why = _download(BBH_URL, archive, timeout)
  if why:
    return [f"bbh: {why} (offline BBH from BIG-bench's task files still works: "
            "flan-jax data prepare bigbench)"]
  why = _unpack_or_why(archive, out / "_unpacked")
  if why:
    return [f"bbh: {why}"]
  top = next((out / "_unpacked").iterdir())
  for sub in ("bbh", "cot-prompts"):
    if (top / sub).is_dir():
      shutil.move(str(top / sub), str(out / sub))
  shutil.rmtree(out / "_unpacked")
  return []


# BIG-bench's task files from the bigbench 1.0.0 source archive on the package index: no
# pip, no build (its metadata names a dependency by a file:// URL, which pip >= 24 refuses).


def pip_index_urls() -> list[str]:
  """The package indexes pip is configured with, in pip's order: the index URL
  ($PIP_INDEX_URL, else `index-url` in pip's configuration files, else PyPI), then the extra
  index URLs ($PIP_EXTRA_INDEX_URL / `extra-index-url`)."""
  import configparser  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  xdg = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
  home = pathlib.Path.home()
  files = [*(pathlib.Path(d) / "pip" / "pip.conf" for d in reversed(xdg)), pathlib.Path("/etc/pip.conf"),
           home / ".pip" / "pip.conf",
           pathlib.Path(os.environ.get("XDG_CONFIG_HOME", home / ".config")) / "pip" / "pip.conf",
           pathlib.Path(sys.prefix) / "pip.conf"]
  if os.environ.get("PIP_CONFIG_FILE"):
    files.append(pathlib.Path(os.environ["PIP_CONFIG_FILE"]))
  found = {}
  for path in files:  # later files win, as in pip
    parser = configparser.RawConfigParser()
    try:
      parser.read(path)
    except (configparser.Error, OSError):
      continue
    for section in ("global", "download"):
      for key in ("index-url", "extra-index-url"):
        if parser.has_option(section, key):
          found[key] = parser.get(section, key)
  index = os.environ.get("PIP_INDEX_URL") or found.get("index-url") or BIGBENCH_DEFAULT_INDEX
  extra = os.environ.get("PIP_EXTRA_INDEX_URL") or found.get("extra-index-url") or ""
  return [index, *(u for u in extra.split() if u != index)]


def index_files(index_url: str, project: str, timeout: float) -> dict[str, tuple[str, str | None]]:
  """filename -> (URL, sha256 or None) of a project on a PEP 503/691 simple index (JSON or
  HTML; http(s) or file:// with index.html pages)."""
  import html.parser  # pylint: disable=g-import-not-at-top
  import urllib.parse  # pylint: disable=g-import-not-at-top
  import urllib.request  # pylint: disable=g-import-not-at-top
  page = index_url.rstrip("/") + f"/{project}/"
  if page.startswith("file:"):
    local = pathlib.Path(urllib.request.url2pathname(urllib.parse.urlparse(page).path))
    body = (local / "index.html").read_text(encoding="utf-8")
  else:
    request = urllib.request.Request(
        page, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    with urllib.request.urlopen(request, timeout=timeout) as r:
      body = r.read().decode("utf-8")
  try:
    listing = json.loads(body)
  except ValueError:
    listing = None
  if isinstance(listing, dict):
    return {f["filename"]: (urllib.parse.urljoin(page, f["url"]), (f.get("hashes") or {}).get("sha256"))
            for f in listing.get("files", [])}

  class Anchors(html.parser.HTMLParser):
    def __init__(self):
      super().__init__()
      self.files = {}

    def handle_starttag(self, tag, attrs):
      href = dict(attrs).get("href")
      if tag == "a" and href:
        url, _, fragment = urllib.parse.urljoin(page, href).partition("#")
        name = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        sha = fragment[len("sha256="):] if fragment.startswith("sha256=") else None
        self.files[name] = (url, sha)

  anchors = Anchors()
  anchors.feed(body)
  return anchors.files


def _sha256(path: pathlib.Path) -> str:
  import hashlib  # pylint: disable=g-import-not-at-top
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
  import tarfile  # pylint: disable=g-import-not-at-top
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
        why = _member_problem(member.name) or _member_problem(rel)
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


def _bigbench(root: pathlib.Path, timeout: float, index_urls=None) -> list[str]:
  import tarfile  # pylint: disable=g-import-not-at-top
  out = root / "bigbench"
  tasks_dir = out / "benchmark_tasks"
  if any(tasks_dir.glob("*/task.json")):
    return []
  filename = f"bigbench-{BIGBENCH_VERSION}.tar.gz"
  tried, found = [], None
  for index in index_urls or pip_index_urls():
    try:
      files = index_files(index, "bigbench", timeout)
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
  why = _download(url, archive, timeout)
  if why:
    return [f"bigbench: {why}"]
  if sha256 and _sha256(archive) != sha256:
    archive.unlink()
    return [f"bigbench: {url}: its sha256 differs from the index's ({sha256}); deleted"]
  try:
    n = extract_bigbench_tasks(archive, tasks_dir)
  except (ValueError, tarfile.TarError, EOFError, OSError) as e:
    return [f"bigbench: {e}"]
  archive.unlink()
  print(f"bigbench: {n} task files from {url} in {tasks_dir}")
  return []


def _tydiqa(root: pathlib.Path, timeout: float) -> list[str]:
  return _fetch_files("tydiqa", {root / "tydiqa" / f"tydiqa-goldp-v1.1-{s}.json":
                                 f"{TYDIQA_URL}/tydiqa-goldp-v1.1-{s}.json"
                                 for s in ("train", "dev")}, timeout)


def _mgsm(root: pathlib.Path, timeout: float) -> list[str]:
  """The 11 test TSVs (10 languages and English) and the native CoT exemplars (exemplars.py,
  read as data by eval_suites.read_mgsm_exemplars, never run)."""
  from flan_jax.tasks import eval_suites  # pylint: disable=g-import-not-at-top
  files = {root / "mgsm" / f"mgsm_{lang}.tsv": f"{MGSM_URL}/mgsm_{lang}.tsv"
           for lang in (*eval_suites.MGSM_LANGUAGES, eval_suites.MGSM_ENGLISH)}
  files[root / "mgsm" / "exemplars.py"] = f"{MGSM_URL}/exemplars.py"
  return _fetch_files("mgsm", files, timeout)


def upload_tree(local: pathlib.Path, dest) -> int:
  """Copies every file under `local` to the same place under `dest` (a URL), each one
  written aside (`.NAME.tmp-PID`) and renamed into place, so that a reader never sees
  half a file and an interrupted upload leaves only whole files under their names (git's
  objects and TFDS's raw downloads stay behind). Returns how many files were written."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  dest = storage.path(dest)
  n = 0
  def wanted(rel: pathlib.Path) -> bool:  # not git's objects, nor TFDS's raw downloads
    return ".git" not in rel.parts and rel.parts[:2] != ("tfds", "downloads")

  for src in sorted(p for p in local.rglob("*") if p.is_file() and wanted(p.relative_to(local))):
    target = dest.joinpath(*src.relative_to(local).parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    tf.io.gfile.copy(str(src), str(tmp), overwrite=True)
    storage.replace(tmp, target)
    n += 1
  return n


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
      uploaded = upload_tree(pathlib.Path(staging), root)
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


def main(argv=None) -> int:
  raw = argparse.RawDescriptionHelpFormatter
  p = argparse.ArgumentParser(prog="flan-jax data", formatter_class=raw,
                              description="Fetch and cache Flan 2022 collections and benchmarks (needs network).")
  sub = p.add_subparsers(dest="command", required=True, metavar="{prepare,cache,stats}")
  prep = sub.add_parser("prepare", help="fetch and cache a collection or benchmark", formatter_class=raw,
                        description=__doc__.split("\n\n", 1)[1].strip())
  prep.add_argument("collection", choices=list(CHOICES) + ["all"], metavar="WHAT",
                    help=f"one of {', '.join(CHOICES)}, or all (every one of them)")
  prep.add_argument("--data_dir", default=None,
                    help=f"where to cache: a path or a URL such as gs://BUCKET/flan (default "
                         f"${catalogue.DATA_DIR_ENV}, else {catalogue.DEFAULT_DATA_DIR})")
  prep.add_argument("--timeout", type=float, default=600, help="seconds per download (default 600)")
  cache = sub.add_parser(
      "cache", help="render and tokenize a task or mixture once into sharded TFRecords (USE_CACHED_TASKS)",
      formatter_class=raw, description="Renders and tokenizes NAME (a Flan mixture, a family, a variant) into "
      "seqio's cache layout under --out; training reads it with --gin.USE_CACHED_TASKS=True "
      "--gin.train.seqio_cache_dirs=\"['OUT']\". Resumes after a kill (finished shards are kept).")
  cache.add_argument("name", metavar="MIXTURE_OR_TASK")
  cache.add_argument("--out", required=True, help="cache dir: a path or a URL such as gs://BUCKET/flan_cache")
  cache.add_argument("--shards", type=int, default=4, help="TFRecord files per member (default 4)")
  cache.add_argument("--workers", type=int, default=1, help="processes rendering shards in parallel (default 1)")
  cache.add_argument("--inputs_length", type=int, default=2048,
                     help="TASK_FEATURE_LENGTHS['inputs'] of the runs that read it (sets the few-shot budget; default 2048)")
  cache.add_argument("--targets_length", type=int, default=512,
                     help="TASK_FEATURE_LENGTHS['targets'] of the runs that read it (default 512)")
  cache.add_argument("--split", default="train")
  cache.add_argument("--data_dir", default=None, help="prepared data to read (default $FLAN_JAX_DATA_DIR)")
  cache.add_argument("--task_module", action="append", default=[], metavar="MODULE",
                     help="also import MODULE to register tasks (repeatable)")
  cache.add_argument("--engine", choices=("local", "beam"), default="local",
                     help="local: --workers processes on this machine (default, fast); beam: an Apache Beam "
                     "pipeline, for Dataflow/Flink/Spark; Beam options such as --runner=DataflowRunner "
                     "--project=P --region=R --temp_location=gs://... follow (pip install \".[beam]\")")
  cache.add_argument("--dry_run", action="store_true",
                     help="with --engine=beam: print the pipeline and options it would submit, run nothing")
  stats = sub.add_parser("stats", help="shares, formats and lengths of a mixture's rendered examples")
  stats.add_argument("mixture")
  stats.add_argument("--n", type=int, default=20_000, help="examples to render (default 20000)")
  stats.add_argument("--seed", type=int, default=0)
  stats.add_argument("--inputs_length", type=int, default=2048, help="input budget in tokens (default 2048)")
  stats.add_argument("--data_dir", default=None)
  args, extra = p.parse_known_args(argv)
  if extra and not (args.command == "cache" and args.engine == "beam"):
    p.error(f"unrecognized arguments: {' '.join(extra)}"
            + (" (Beam pipeline options need --engine=beam)" if args.command == "cache" else ""))
  args.beam_args = extra
  if args.command == "cache":
    from flan_jax.tasks import cache as cache_lib  # pylint: disable=g-import-not-at-top
    return cache_lib.main(args)
  if args.command == "stats":
    from flan_jax.tasks import stats as stats_lib  # pylint: disable=g-import-not-at-top
    return stats_lib.run(args)
  failures = prepare(args.collection, args.data_dir, timeout=args.timeout)
  for f in failures:
    print(f"could not get: {f}")
  print(f"{len(failures)} item(s) missing under {catalogue.data_dir(args.data_dir)}")
  return 1 if failures else 0
