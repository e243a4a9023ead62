"""The training job every launcher starts: `flan-jax train` with the user's gin files and bindings."""
from __future__ import annotations

import ast
import dataclasses
import os
import re

import flan_jax
from flan_jax import tasks
from flan_jax.runtime import gin_utils
from flan_jax.tasks import cache_reader
from flan_jax.tasks.collections import catalogue

# Cloud TPU node, queued-resource and xpk workload names; a safe subset for SLURM and SkyPilot too.
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")


@dataclasses.dataclass(frozen=True)
class GinFile:
  """A `--gin_file` as a worker must name it, and the local file to ship when it is not packaged."""
  remote: str             # 'gin/recipes/flan_t5_xl.gin' (resolves in the installed package) or a bare name
  local: str | None = None  # set when the file is not one of flan_jax's shipped gin files


def portable_gin_file(name: str) -> GinFile:
  """Shipped gin files are named relative to the package's gin/ directory, so they resolve on any
  machine with flan_jax installed; other files must be shipped next to the job (`local`)."""
  path = gin_utils.resolve_gin_file(name)
  root = str(gin_utils.gin_root())
  if os.path.commonpath([path, root]) == root:
    return GinFile("gin/" + os.path.relpath(path, root).replace(os.sep, "/"))
  return GinFile(os.path.basename(path), path)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_plain_text(what: str, value) -> None:
  """Launchers write user values into shell scripts, YAML and comments: a newline (or any other
  control character) there would end a command, a heredoc or a comment early, and run what
  follows. Such a value is refused, naming where it came from."""
  if isinstance(value, (list, tuple)):
    for v in value:
      check_plain_text(what, v)
    return
  m = _CONTROL.search(str(value)) if value is not None else None
  if m:
    raise ValueError(f"{what}: the value {str(value)!r} holds the control character {m.group()!r}; launch writes "
                     "values into shell scripts, where it would end the command early. Remove it")


@dataclasses.dataclass(frozen=True)
class Job:
  """`flan-jax train` for one recipe. `bindings` are 'KEY = VALUE' as gin_utils.split_gin_args makes them."""
  name: str
  gin_files: tuple[GinFile, ...]
  bindings: tuple[str, ...]
  model_dir: str
  data_dir: str | None = None  # FLAN_JAX_DATA_DIR of every worker (--data_dir)

  def __post_init__(self):
    for b in self.bindings:
      key, _, value = b.partition(" = ")
      check_plain_text(f"--gin.{key.strip()}", key + value)
    for f in self.gin_files:
      check_plain_text("--gin_file", [f.remote, f.local or ""])
    check_plain_text("--gin.MODEL_DIR", self.model_dir)
    check_plain_text("--data_dir", self.data_dir)

  @property
  def env(self) -> dict[str, str]:
    """What every training process gets in its environment besides the launcher's own variables."""
    return {"FLAN_JAX_DATA_DIR": self.data_dir} if self.data_dir else {}

  @property
  def shipped_files(self) -> list[str]:
    return [f.local for f in self.gin_files if f.local]

  def train_argv(self, python: str = "python3", file_names: dict[str, str] | None = None) -> list[str]:
    """The command line; `file_names` maps a shipped file's local path to its name on the workers."""
    files = [(file_names or {}).get(f.local, f.remote) if f.local else f.remote for f in self.gin_files]
    gin_args = [f"--gin_file={f}" for f in files]
    for b in self.bindings:
      key, value = b.split(" = ", 1)
      gin_args.append(f"--gin.{key}={_unquoted(value)}")
    return [python, "-m", "flan_jax.cli", "train", *gin_args]


def _unquoted(value: str) -> str:
  """`'gs://b/run'` -> `gs://b/run` when `flan-jax train` quotes it back the same (one quoting layer fewer)."""
  try:
    literal = ast.literal_eval(value)
  except (ValueError, SyntaxError):
    return value
  if isinstance(literal, str) and literal and gin_utils.split_gin_args([f"--gin.K={literal}"])[1] == [f"K = {value}"]:
    return literal
  return value


def default_name(gin_files: list[str]) -> str:
  """'gin/recipes/flan_t5_xl.gin' -> 'flan-t5-xl' (the last file is the recipe)."""
  stem = os.path.splitext(os.path.basename(gin_files[-1]))[0].lower()
  name = re.sub(r"[^a-z0-9]+", "-", stem).strip("-")[:40].strip("-")
  return name if name and name[0].isalpha() else f"flan-{name}"


def check_name(name: str) -> str:
  if not NAME_RE.match(name):
    raise ValueError(f"--name={name!r}: use 1-40 lowercase letters, digits and '-', starting with a letter "
                     f"and not ending with '-' (Cloud TPU and xpk workload naming rules)")
  return name


def source_root() -> str | None:
  """The repository flan_jax runs from (to build a wheel or sync a workdir), if it is a source checkout."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(flan_jax.__file__)))
  return root if os.path.isfile(os.path.join(root, "setup.py")) else None


# ---------------------------------------------------------------------------------------
# The data a recipe reads: checked where the workers will read it, before anything is created.

FLAN_COLLECTIONS = ("muffin", "t0sf", "niv2", "cot")


def _mixture_tables() -> tuple[dict, dict]:
  """RATES and SCALING of flan_jax/tasks/mixtures.py, read from its source (importing it
  registers ~7,000 tasks, which a launcher does not need to name four collections)."""
  path = os.path.join(os.path.dirname(tasks.__file__), "mixtures.py")
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read())
  found = {}
  for node in tree.body:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
      if node.targets[0].id in ("RATES", "SCALING"):
        found[node.targets[0].id] = ast.literal_eval(node.value)
  return found["RATES"], found["SCALING"]


def mixture_collections(name: str) -> tuple[str, ...]:
  """The Flan 2022 collections whose prepared data a mixture or task reads ((): none, e.g.
  the embedded mixture or an evaluation suite)."""
  rates, scaling = _mixture_tables()
  if name == "flan2022_submix":
    parts = list(rates)
  elif m := re.fullmatch(r"flan_scaling_(\d+)_tasks(_no_cot)?", name):
    parts = [p for p in scaling.get(int(m.group(1)), ()) if not (m.group(2) and p == "cot")]
  elif m := re.fullmatch(r"flan2022_([a-z0-9]+?)(_\d+)?", name):
    parts = [m.group(1)]
  else:  # a task: collections name their tasks '<collection>_<dataset>[_<format>]'
    parts = [name.split("_", 1)[0]]
  # FLAN's released submixtures flan2021 and dialog are both drawn from Muffin's data.
  parts = [{"flan2021": "muffin", "dialog": "muffin"}.get(p.split("_")[0], p.split("_")[0]) for p in parts]
  return tuple(c for c in FLAN_COLLECTIONS if c in parts)


def _list_dir(path: str) -> set[str] | None:
  if "://" in path:  # gs://... and other object stores, through TensorFlow's filesystems
    import tensorflow as tf
    return set(n.rstrip("/") for n in tf.io.gfile.listdir(path)) if tf.io.gfile.isdir(path) else None
  return set(os.listdir(path)) if os.path.isdir(path) else None


def _join(*parts: str) -> str:
  return "/".join([parts[0].rstrip("/"), *parts[1:]]) if "://" in parts[0] else os.path.join(*parts)


def missing_data(collection: str, data_dir: str) -> tuple[int, int, str | None]:
  """(files missing, files expected, first missing path) of one collection under `data_dir`:
  the files `flan-jax data prepare COLLECTION` writes and the tasks read."""
  entries = catalogue.entries(collection)
  if collection == "cot":
    names = _list_dir(_join(data_dir, "cot")) or set()
    expected = [(f"{e.dataset}_train.tsv", _join(data_dir, "cot", f"{e.dataset}_train.tsv")) for e in entries]
    missing = [path for name, path in expected if name not in names]
  elif collection == "niv2":
    tasks_dir = _join(data_dir, "natural-instructions", "tasks")
    present = set()
    for name in _list_dir(tasks_dir) or ():  # also the repository's spellings (readers.niv2_task_file)
      stem = name.removesuffix(".json")
      present.update({stem, stem.replace("-", "_"), stem.split(".")[0]})
    missing = [_join(tasks_dir, f"{e.dataset}.json") for e in entries if e.dataset not in present]
  else:  # muffin, t0sf: <data_dir>/<collection>/<task>/train.jsonl
    root = _join(data_dir, collection)
    tasks = _list_dir(root) or set()
    missing = []
    for e in entries:
      files = _list_dir(_join(root, e.name)) if e.name in tasks else None
      if not files or "train.jsonl" not in files:
        missing.append(_join(root, e.name, "train.jsonl"))
  return len(missing), len(entries), (missing[0] if missing else None)


def check_data(mixture: str, data_dir: str | None, *, where: str) -> str:
  """Refuses (ValueError naming the collection and the `flan-jax data prepare` command) when a
  collection `mixture` reads is not prepared under `data_dir`; else returns the dry run's line."""
  collections = mixture_collections(mixture)
  if not collections:
    return f"data: {mixture} reads no prepared Flan collection (nothing to check)"
  if data_dir is None:
    raise ValueError(
        f"{mixture} reads the {', '.join(collections)} collection(s) from a data directory, and {where} "
        f"cannot see this machine's: pass --data_dir=DIR that every worker reads, prepared once with "
        + "; ".join(f"`flan-jax data prepare {c} --data_dir=DIR`" for c in collections) + ". Nothing was created.")
  problems, total = [], 0
  for c in collections:
    n_missing, n_expected, example = missing_data(c, data_dir)
    total += n_expected
    if n_missing:
      problems.append(f"collection {c}: {n_missing} of {n_expected} files missing (e.g. {example}); run "
                      f"`flan-jax data prepare {c} --data_dir={data_dir}`")
  if problems:
    raise ValueError(f"{mixture} is not prepared under --data_dir={data_dir}: " + "; ".join(problems)
                     + ". Nothing was created (--skip_data_check launches anyway).")
  return f"data: {mixture} reads {', '.join(collections)} from {data_dir}: all {total} task files present"


def check_cache(mixture: str, cache_dirs, lengths: dict | None, *, data_dir: str | None = None) -> str:
  """Refuses (ValueError naming the exact `flan-jax data cache` command) unless `mixture` is
  cached, complete and for the recipe's TASK_FEATURE_LENGTHS, in one of `cache_dirs`; else
  returns the dry run's line."""
  lengths = {"inputs": int(lengths["inputs"]), "targets": int(lengths["targets"])} if lengths else None
  command = cache_reader.rebuild_command(mixture, cache_dirs[0], lengths or cache_reader.DEFAULT_LENGTHS)
  if data_dir:
    command += f" --data_dir={data_dir}"
  for d in cache_dirs:
    manifest = cache_reader.cached_here(mixture, d)
    if manifest is None:
      continue
    built = dict(manifest.get("task_feature_lengths", {}))
    if lengths is not None and built != lengths:
      raise ValueError(f"the cache of {mixture} in {d} was built for TASK_FEATURE_LENGTHS {built} but the recipe "
                       f"uses {lengths}: rebuild it with `{command}` (a new --out, or after deleting the old "
                       "one). Nothing was created (--skip_data_check launches anyway).")
    examples = sum(manifest.get("examples", {}).values())
    return (f"data: {mixture} cached in {d}: {len(manifest['members'])} member(s), {examples} examples for "
            f"lengths {built}; workers train with USE_CACHED_TASKS=True")
  raise ValueError(f"{mixture} is not cached in --cache_dir={', '.join(cache_dirs)} (no "
                   f"{_join(cache_dirs[0], mixture, cache_reader.MANIFEST.format(split='train'))}): build it once with "
                   f"`{command}`. Nothing was created (--skip_data_check launches anyway).")


def local_data_dir() -> str:
  """This machine's data directory (FLAN_JAX_DATA_DIR or the default), which local processes read."""
  return str(catalogue.data_dir())
