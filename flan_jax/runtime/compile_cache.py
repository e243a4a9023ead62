"""JAX's persistent compilation cache for `train`, `eval`, `infer` and `generate`.

A compiled program (the train step, the decoder's loops) is written to a directory
keyed by its HLO, devices and compiler options; a later run with the same program
(a resume, another eval of the same model, `generate` again) loads it instead of
compiling. The directory, in order of precedence:

  FLAN_JAX_COMPILATION_CACHE=DIR | off     environment (overrides gin)
  compilation_cache.directory = 'DIR'      gin; compilation_cache.enabled = False turns it off
  $XDG_CACHE_HOME/flan_jax/jax_cache       default (~/.cache/flan_jax/jax_cache)

A user cache directory rather than one under MODEL_DIR: runs of the same model in
different MODEL_DIRs share compilations, and on a pod each worker keeps its own local
copy instead of reading programs from a bucket. Programs that compile in under
`min_compile_time_secs` are not stored (JAX's own threshold, 1 s by default). Each
program that is stored or loaded prints one line naming it to stderr, e.g.

  compilation cache: jit__train_step loaded from ~/.cache/flan_jax/jax_cache in 0.21 s (hit; compiling it took 9.6 s)
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Callable

import gin
import jax

ENV = "FLAN_JAX_COMPILATION_CACHE"
OFF = ("off", "0", "false", "none", "")
_COMPILER_LOGGER = "jax._src.compiler"


def default_directory() -> str:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "flan_jax", "jax_cache")


def _shown(path: str) -> str:
  home = os.path.expanduser("~")
  return "~" + path[len(home):] if home != "/" and path.startswith(home + os.sep) else path


class _CacheEvents(logging.Filter):
  """Reads JAX's compiler log records for cache hits and writes; prints one line for each.

  Installed as a filter on JAX's compiler logger, whose level is lowered to DEBUG so the
  records reach it; records below the level the logger had before are dropped here, so
  nothing else JAX logs changes."""

  def __init__(self, directory: str, say: Callable[[str], None], previous_level: int):
    super().__init__()
    self.directory, self.say, self.previous_level = directory, say, previous_level
    self.hits: list[str] = []
    self.stored: list[str] = []
    self._saved_s = 0.0

  def filter(self, record: logging.LogRecord) -> bool:
    msg, args = str(record.msg), record.args if isinstance(record.args, tuple) else ()
    if msg.startswith("Persistent compilation cache hit for") and args:
      self.hits.append(str(args[0]))  # its line follows JAX's timing events (`duration`)
    elif "seconds to compile" in msg and msg.startswith("'%s' took at least") and len(args) >= 3:
      self.stored.append(str(args[0]))
      self.say(f"compilation cache: {args[0]} compiled in {float(args[2]):.1f} s (miss); "
               f"stored in {_shown(self.directory)} for the next run")
    return record.levelno >= self.previous_level

  def duration(self, event: str, seconds: float, **_) -> None:
    """JAX's monitoring events after a hit: compile time saved, then the time loading took."""
    if event.endswith("/compile_time_saved_sec"):
      self._saved_s = seconds
    elif event.endswith("/cache_retrieval_time_sec") and self.hits:
      self.say(f"compilation cache: {self.hits[-1]} loaded from {_shown(self.directory)} in {seconds:.2f} s "
               f"(hit; compiling it took {self._saved_s + seconds:.1f} s)")


def _on_duration(event: str, seconds: float, **kwargs) -> None:
  if _events is not None:
    _events.duration(event, seconds, **kwargs)


_listening = False
_events: _CacheEvents | None = None


@gin.configurable("compilation_cache", denylist=["say"])
def enable(directory: str | None = None, enabled: bool = True, min_compile_time_secs: float = 1.0,
           say: Callable[[str], None] | None = None) -> str | None:
  """Points JAX's persistent compilation cache at the chosen directory (see the module
  docstring); returns it, or None when the cache is off. Call before the first compile."""
  global _events, _listening
  env = os.environ.get(ENV)
  if env is not None:
    enabled, directory = env.strip().lower() not in OFF, (env.strip() or None)
  if say is None:
    # stderr: stdout carries results (generate's completions, infer's paths), these are notes.
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if jax.process_index() == 0 else (lambda line: None)
  logger = logging.getLogger(_COMPILER_LOGGER)
  if _events is not None:  # an earlier call in this process (tests, notebooks)
    logger.removeFilter(_events)
    logger.setLevel(_events.previous_level)
    _events = None
  if not enabled:
    jax.config.update("jax_enable_compilation_cache", False)
    return None
  directory = os.path.abspath(os.path.expanduser(directory or default_directory()))
  if "://" not in directory:
    try:
      os.makedirs(directory, exist_ok=True)
    except OSError as e:
      raise ValueError(f"compilation cache directory {directory} cannot be created ({e.strerror}); set "
                       f"{ENV}=DIR or compilation_cache.directory (gin) elsewhere, or {ENV}=off") from e
  from jax.experimental.compilation_cache import compilation_cache as cc
  if jax.config.jax_compilation_cache_dir != directory:
    cc.reset_cache()  # a cache opened earlier in this process stays bound to its old directory otherwise
  jax.config.update("jax_enable_compilation_cache", True)
  jax.config.update("jax_compilation_cache_dir", directory)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_secs))
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  previous = logger.level
  _events = _CacheEvents(directory, say, previous if previous != logging.NOTSET else logger.getEffectiveLevel())
  logger.addFilter(_events)
  logger.setLevel(logging.DEBUG)
  if not _listening:
    jax.monitoring.register_event_duration_secs_listener(_on_duration)
    _listening = True
  return directory


@contextlib.contextmanager
def suspended():
  """The persistent cache off for the compiles inside, on as before afterwards. jax decides
  once per process whether the cache is used and keeps that answer until `reset_cache()`,
  hence the resets. For programs that cannot be loaded back here (`plan --compile`'s TPU
  programs, compiled without a TPU client): storing them would only fill the cache, and
  reading one back fails with a warning."""
  from jax.experimental.compilation_cache import compilation_cache as cc
  was = jax.config.jax_enable_compilation_cache
  jax.config.update("jax_enable_compilation_cache", False)
  cc.reset_cache()
  try:
    yield
  finally:
    jax.config.update("jax_enable_compilation_cache", was)
    cc.reset_cache()


def events() -> _CacheEvents | None:
  """The hits and stores seen since the last `enable` (for tests and benchmarks)."""
  return _events
