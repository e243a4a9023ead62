"""Keeps the `flan-jax` commands' output to our own lines.

`quiet()` runs first thing in `flan_jax.cli.main`, before TensorFlow (imported by seqio)
or orbax load:

- TensorFlow's C++ start-up lines (absl's "before InitializeLog" notice, oneDNN, cudart_stub,
  cuInit, duplicate cuFFT/cuDNN/cuBLAS factories) are written straight to file descriptor 2
  while `tensorflow` is imported; TF 2.20+ logs them through absl, which ignores
  TF_CPP_MIN_LOG_LEVEL. The import is therefore run with fd 2 captured, and every captured
  line that is not one of those is written back, so real errors still show.
- TensorFlow is kept off GPUs (T5X does the same): JAX owns the accelerators, TF only feeds
  data, and its device scan (cuInit) happens inside the captured import.
- TF_CPP_MIN_LOG_LEVEL=1 (unless set) for TensorFlow's later INFO lines.
- orbax's "Metadata file does not exist: .../_CHECKPOINT_METADATA" warning, which every
  restore of a parameter-only item triggers (the step metadata lives beside the item, not
  in it), is dropped. Other absl warnings still show.

FLAN_JAX_VERBOSE=1 turns all of this off.
"""
from __future__ import annotations

import contextlib
import glob
import importlib.abc
import importlib.util
import importlib.machinery
import logging
import os
import re
import sys
import tempfile

# TensorFlow start-up lines that tell a flan-jax user nothing.
NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on"
    r"|cudart_stub\.cc|Could not find cuda drivers|failed call to cuInit|cuda_platform\.cc"
    r"|Unable to register cu(FFT|DNN|BLAS) factory|computation_placer\.cc"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|rebuild TensorFlow with the appropriate compiler flags")


@contextlib.contextmanager
def _captured_fd2():
  """Sends file descriptor 2 to a temporary file; on exit restores it and writes back the
  captured lines that are not start-up noise."""
  try:
    sys.stderr.flush()
  except (AttributeError, ValueError):
    pass
  saved = os.dup(2)
  with tempfile.TemporaryFile() as tmp:
    os.dup2(tmp.fileno(), 2)
    try:
      yield
    finally:
      try:
        sys.stderr.flush()
      except (AttributeError, ValueError):
        pass
      os.dup2(saved, 2)
      os.close(saved)
      tmp.seek(0)
      kept = [line for line in tmp.read().decode("utf-8", "replace").splitlines(keepends=True)
              if not NOISE.search(line)]
      if kept:
        os.write(2, "".join(kept).encode("utf-8"))


def _hide_gpus_from(tf) -> None:
  try:
    tf.config.set_visible_devices([], "GPU")
  except Exception:  # pylint: disable=broad-except  (no GPU build, or devices already set up)
    pass


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
  """Finds `tensorflow` like the path finder does, and runs its import quietly."""

  def find_spec(self, fullname, path=None, target=None):
    if fullname != "tensorflow":
      return None
    spec = importlib.machinery.PathFinder.find_spec(fullname, path)
    if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
      return spec
    real_exec = spec.loader.exec_module

    def exec_module(module):
      with _captured_fd2():
        real_exec(module)
        _hide_gpus_from(module)

    spec.loader.exec_module = exec_module  # this spec's own loader instance
    return spec


class _DropOrbaxStepMetadataWarning(logging.Filter):
  """Drops absl warnings that say nothing the user can act on (orbax step metadata, seqio packing)."""

  def filter(self, record: logging.LogRecord) -> bool:
    try:
      message = record.getMessage()
    except Exception:  # pylint: disable=broad-except
      return True
    if message.startswith("Features not in `features_length` will be removed during packing"):
      return False  # seqio, on every packed task: flan_jax's tasks carry their texts and template ids on purpose
    return not (message.startswith("Metadata file does not exist")
                and message.rstrip().endswith("_CHECKPOINT_METADATA"))


_FINDER = _QuietTensorFlowFinder()
_FILTER = _DropOrbaxStepMetadataWarning()


# libtpu's settings on a machine without TPU chips: with the `tpu` extra installed (for
# `plan --compile`), jax loads libtpu on every machine, and libtpu, finding no TPU, prints
# several start-up complaints (host bounds, worker hostnames, a source-location trace) before
# jax falls back to its other backends. Telling it there is nothing to look for keeps it quiet;
# jax still finds no TPU and uses the CPU (or GPU). `plan --compile` sets its own.
_NO_TPU_SETTINGS = {"TPU_SKIP_MDS_QUERY": "1", "TPU_WORKER_HOSTNAMES": "localhost", "TPU_ACCELERATOR_TYPE": "v4-8",
                    "TPU_STDERR_LOG_LEVEL": "3", "TPU_MIN_LOG_LEVEL": "3"}


def _has_tpu_chips() -> bool:
  """Whether a TPU chip is attached (Google's PCI vendor id, as jax's own check reads it)."""
  for vendor in glob.glob("/sys/bus/pci/devices/*/vendor"):
    try:
      with open(vendor) as f:
        if f.read().strip() == "0x1ae0":
          return True
    except OSError:
      continue
  return False


def quiet_libtpu() -> None:
  """libtpu's quiet settings, when libtpu is installed, this machine has no TPU chip and the
  user set none of them (each is only a default)."""
  if any(k in os.environ for k in _NO_TPU_SETTINGS) or importlib.util.find_spec("libtpu") is None:
    return
  if not _has_tpu_chips():
    for k, v in _NO_TPU_SETTINGS.items():
      os.environ.setdefault(k, v)


def quiet() -> None:
  """Silences third-party start-up logging for this process (see the module docstring)."""
  if os.environ.get("FLAN_JAX_VERBOSE"):
    return
  quiet_libtpu()
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  if "tensorflow" not in sys.modules and _FINDER not in sys.meta_path:
    sys.meta_path.insert(0, _FINDER)
  absl_logger = logging.getLogger("absl")
  if _FILTER not in absl_logger.filters:
    absl_logger.addFilter(_FILTER)
