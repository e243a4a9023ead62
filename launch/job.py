"""The training job every launcher starts: `flan-jax train` with the user's gin files and bindings."""
from __future__ import annotations

import ast
import dataclasses
import os
import re

import flan_jax
from flan_jax import gin_utils

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


@dataclasses.dataclass(frozen=True)
class Job:
  """`flan-jax train` for one recipe. `bindings` are 'KEY = VALUE' as gin_utils.split_gin_args makes them."""
  name: str
  gin_files: tuple[GinFile, ...]
  bindings: tuple[str, ...]
  model_dir: str

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
