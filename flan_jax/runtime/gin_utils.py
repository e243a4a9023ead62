"""T5X-style gin flags: `--gin_file=F` (repeatable) and `--gin.KEY=VALUE` overrides.

Gin files are looked up as given, then relative to the installed `gin/` directory
(so `gin/recipes/quickstart.gin` works from any working directory), and `include`
statements inside them resolve against that directory too.
"""
from __future__ import annotations

import ast
import contextlib
import difflib
import logging
import os
import pathlib
import re
from typing import Any, Sequence

import gin

import flan_jax


def gin_root() -> pathlib.Path:
  """The directory holding the shipped gin files (installed copy or the repository's)."""
  pkg = pathlib.Path(flan_jax.__file__).resolve().parent
  for candidate in (pkg / "gin", pkg.parent / "gin"):
    if (candidate / "recipes").is_dir():
      return candidate
  raise FileNotFoundError(f"gin files not found next to {pkg}; reinstall flan_jax")


def resolve_gin_file(name: str) -> str:
  if os.path.isfile(name):
    return os.path.abspath(name)
  root = gin_root()
  stripped = name[len("gin/"):] if name.startswith("gin/") else name
  for candidate in (root / stripped, root / (stripped + ".gin")):
    if candidate.is_file():
      return str(candidate)
  recipes = sorted(p.name for p in (root / "recipes").glob("*.gin"))
  base = os.path.basename(stripped if stripped.endswith(".gin") else stripped + ".gin")
  found = sorted("gin/" + str(p.relative_to(root)) for p in root.rglob(base))
  hint = f"; write --gin_file={found[0]}" if len(found) == 1 else (
      f"; did you mean one of {', '.join(found)}?" if found else "")
  raise FileNotFoundError(f"gin file {name!r} not found (looked in . and {root}){hint}; recipes "
                          f"(gin/recipes/): {', '.join(recipes)}")


_IDENT = re.compile(r"^[A-Za-z_][\w./]*$")


def _gin_value(value: str) -> str:
  """Leaves gin literals and references alone; quotes a bare path or word so that
  `--gin.MODEL_DIR=/tmp/run` works as T5X users' `--gin.MODEL_DIR=\"'/tmp/run'\"` does."""
  v = value.strip()
  if not v or v[0] in "%@([{'\"" or v in ("None", "True", "False"):
    return v
  try:
    ast.literal_eval(v)
    return v
  except (ValueError, SyntaxError):
    return repr(v)


def split_gin_args(argv: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
  """(gin files, gin bindings, remaining args) from `--gin_file=` / `--gin.K=V` flags."""
  files, bindings, rest = [], [], []
  it = iter(argv)
  for arg in it:
    if arg.startswith("--gin_file"):
      files.append(arg.split("=", 1)[1] if "=" in arg else next(it))
    elif arg.startswith("--gin.") or arg.startswith("--gin_bindings"):
      body = arg[len("--gin."):] if arg.startswith("--gin.") else (arg.split("=", 1)[1] if "=" in arg else next(it))
      if "=" not in body:
        raise ValueError(f"gin binding {arg!r} has no '=VALUE'")
      key, value = body.split("=", 1)
      bindings.append(f"{key.strip()} = {_gin_value(value)}")
    else:
      rest.append(arg)
  return files, bindings, rest


def parse(files: Sequence[str], bindings: Sequence[str], *, finalize: bool = True,
          skip_unknown: bool = False) -> None:
  """Parses gin files then bindings; errors name the file or binding at fault. `skip_unknown`:
  bindings of configurables not imported are skipped (planning reads a recipe without the
  modules that evaluation or inference bindings name)."""
  gin.add_config_file_search_path(str(gin_root()))
  for f in files:
    path = resolve_gin_file(f)
    gin.add_config_file_search_path(os.path.dirname(path))
    # gin logs an ERROR for every search path an `include` is not found in; only a
    # file found in none of them is an error, and that one raises.
    logging.disable(logging.ERROR)
    try:
      gin.parse_config_file(path, skip_unknown=skip_unknown)
    except Exception as e:  # gin raises assorted types; keep the original as the cause
      raise ValueError(f"gin file {f}: {e}") from e
    finally:
      logging.disable(logging.NOTSET)
  for b in bindings:
    try:
      gin.parse_config(b, skip_unknown=skip_unknown)
    except Exception as e:
      raise ValueError(f"gin binding `{b}`: {e}") from e
  if finalize:
    gin.finalize()


@contextlib.contextmanager
def parsed(files: Sequence[str], bindings: Sequence[str] = (), *, skip_unknown: bool = True):
  """Gin files and bindings parsed into a fresh config for a `with` block, cleared again after
  it: a command that reads a recipe (planning, launching, a sweep, a conversion) leaves no gin
  state behind for the next reader. `skip_unknown`: see `parse`."""
  gin.clear_config()
  try:
    parse(files, bindings, finalize=False, skip_unknown=skip_unknown)
    yield
  finally:
    gin.clear_config()


def macro(name: str, default: Any = None) -> Any:
  """The value a parsed gin config gives the macro `name` (`%NAME`), else `default`."""
  try:
    return gin.query_parameter(f"%{name}")
  except ValueError:
    return default


MACRO_NAME = re.compile(r"[A-Z][A-Z0-9_]*")  # gin macros as flan_jax and T5X write them
INCLUDE = re.compile(r"""^include\s+['"]([^'"]+)['"]""", re.MULTILINE)


# ----------------------------------------------------------------------------------------
# Gin files read as text, without gin's global state: for --help, for the model a saved or
# shipped file sets, and for launch settings. Parsing proper is `parse` above.


def gin_text(path: str, root: str | None = None, _seen: set[str] | None = None) -> str:
  """A gin file's text with each `include` replaced by the included file's text (found under
  `root`, default the gin root, then beside the including file; each file once)."""
  root = str(gin_root()) if root is None else root
  seen = set() if _seen is None else _seen
  if path in seen:
    return ""
  seen.add(path)
  out = []
  with open(path, encoding="utf-8") as f:
    for line in f.read().splitlines():
      inc = INCLUDE.match(line)
      if not inc:
        out.append(line)
        continue
      for candidate in (os.path.join(root, inc.group(1)), os.path.join(os.path.dirname(path), inc.group(1))):
        if os.path.isfile(candidate):
          out.append(gin_text(candidate, root, seen))
          break
  return "\n".join(out)


def gin_statements(text: str) -> list[tuple[str, str, str]]:
  """(key, value text, trailing comment) of each binding in gin text, in order; indented
  continuation lines are joined to the binding they continue."""
  stmts: list[list[str]] = []
  for line in text.splitlines():
    if not line.strip() or line.lstrip().startswith("#"):
      continue
    if line[0] in " \t" and stmts:
      stmts[-1].append(line.strip())
    elif "=" in line:
      stmts.append([line.strip()])
  out = []
  for parts in stmts:
    key, rest = " ".join(parts).split("=", 1)
    value, comment = _split_comment(rest)
    out.append((key.strip(), value.strip(), comment.strip()))
  return out


def _split_comment(text: str) -> tuple[str, str]:
  """(value, comment) of a binding's right-hand side: the first '#' outside a string."""
  quote = None
  for i, ch in enumerate(text):
    if quote:
      quote = None if ch == quote else quote
    elif ch in "'\"":
      quote = ch
    elif ch == "#":
      return text[:i], text[i + 1:]
  return text, ""


def text_macros(path: str) -> dict[str, str]:
  """{macro: value text} a gin file and its includes set (the last setting wins)."""
  return {k: v for k, v, _ in gin_statements(gin_text(path)) if MACRO_NAME.fullmatch(k)}


_PLACEHOLDERS = {"MODEL_DIR": "DIR", "CHECKPOINT_PATH": "PATH", "INITIAL_CHECKPOINT_PATH": "PATH",
                 "INFER_OUTPUT_DIR": "DIR", "MIXTURE_OR_TASK_NAME": "NAME", "EVAL_MIXTURES_OR_TASKS": "NAMES",
                 "TRAIN_STEPS": "N", "BATCH_SIZE": "N"}


def _macros(config: str) -> tuple[dict[str, str], set[str]]:
  """({macro: value text} defined, {macro} referenced as %NAME) in gin's config string."""
  defined = {}
  for line in config.splitlines():
    m = re.match(r"^([A-Z][A-Z0-9_]*) = (.*)$", line)
    if m:
      defined[m.group(1)] = m.group(2).strip()
  referenced = set(re.findall(r"%([A-Za-z_][\w.]*)", config))
  return defined, referenced


def check_config(bindings: Sequence[str]) -> None:
  """Checks the parsed config before anything runs: every macro given with --gin.NAME= is used
  by some binding (else a typo: suggest close names), and no used macro is left %gin.REQUIRED."""
  config = gin.config_str()
  defined, referenced = _macros(config)
  for b in bindings:
    key, value = (part.strip() for part in b.split("=", 1))
    if MACRO_NAME.fullmatch(key) and key not in referenced:
      close = difflib.get_close_matches(key, sorted((set(defined) | referenced) - {key}), n=3, cutoff=0.6)
      hint = f"; did you mean {' or '.join(close)}?" if close else ""
      raise ValueError(f"--gin.{key}={value}: no binding in the config uses %{key}, so it would have no "
                       f"effect{hint}")
  missing = [k for k, v in defined.items() if v == "%gin.REQUIRED" and k in referenced]
  if missing:
    adds = " ".join(f"--gin.{k}={_PLACEHOLDERS.get(k, 'VALUE')}" for k in missing)
    names = " and ".join(missing)
    raise ValueError(f"{names} {'is' if len(missing) == 1 else 'are'} required: add {adds}")


def strip_gin_context(message: str) -> str:
  """Drops the "In call to configurable ..." lines gin appends to errors raised in an entry point."""
  return re.sub(r"\n\s*In call to configurable .*\Z", "", message, flags=re.S)


def set_up_process(*, memory: bool = True, compilation_cache: bool = True) -> None:
  """What every command that runs a model sets up in its process, in one place.

  `memory`, before anything starts a thread: on CPU, keep freed memory for reuse
  (`host_memory`). `compilation_cache`, once gin is parsed (it reads `compilation_cache.*`):
  JAX's persistent compilation cache (`compile_cache`). `run_entry_point` calls the two at
  those moments; a command without gin (`generate`) calls both at once before its work."""
  from flan_jax.runtime import compile_cache, host_memory  # pylint: disable=g-import-not-at-top
  if memory:
    host_memory.retain_freed_memory_on_cpu()
  if compilation_cache:
    compile_cache.enable()


def run_entry_point(command: str, argv: Sequence[str], example_gin_file: str, entry, *,
                    before_parse=None) -> int:
  """`flan-jax COMMAND --gin_file=F --gin.K=V`: parse the flags and gin, set up the process
  (`set_up_process`), then call `entry()`."""
  files, bindings, rest = split_gin_args(argv)
  if rest:
    raise SystemExit(f"flan-jax {command}: unknown arguments {rest}; use --gin_file=F and --gin.KEY=VALUE")
  if not files:
    raise SystemExit(f"flan-jax {command}: give at least one --gin_file (e.g. {example_gin_file})")
  set_up_process(compilation_cache=False)  # before distributed start-up starts threads
  if before_parse is not None:
    before_parse()
  gin.clear_config()  # one command, one config (matters when entry points run in one process)
  parse(files, bindings, finalize=False)
  check_config(bindings)
  gin.finalize()
  set_up_process(memory=False)
  try:
    entry()
  except (ValueError, FileNotFoundError) as e:
    # gin appends "In call to configurable ..." to errors raised inside an entry point; our
    # messages already name the setting at fault.
    message = str(e)
    cleaned = strip_gin_context(message)
    if cleaned == message:
      raise
    raise (FileNotFoundError if isinstance(e, FileNotFoundError) else ValueError)(cleaned) from e
  return 0
