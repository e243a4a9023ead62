"""Input pipeline: seqio task/mixture -> feature converter -> per-host numpy batches.

Each process reads its own shard (`seqio.ShardInfo(process_index, process_count)`)
and yields `BATCH_SIZE / process_count` rows; `trainer.global_batch` assembles the
global `jax.Array`s. The pipeline is deterministic for a given seed, so its
position is just the number of batches taken: resuming skips that many.
"""
from __future__ import annotations

import difflib
import importlib
import os
import re
import sys
from typing import Iterator, Mapping, Sequence

import jax
import numpy as np
import seqio

# per_process: each process reads its own seqio shard (scales to pods; the data a run
#   sees depends on the number of processes).
# global_slice: each process builds the same global batch and keeps its rows (every
#   process count sees identical batches; costs each host the whole batch's preprocessing).
DATA_SHARDING = ("per_process", "global_slice")

FEATURE_CONVERTERS = {
    "encdec": seqio.EncDecFeatureConverter,
    "decoder": seqio.DecoderFeatureConverter,
    "prefix_lm": seqio.PrefixLMFeatureConverter,
}


def import_task_modules(modules: Sequence[str]) -> None:
  """Imports the modules whose import registers tasks (e.g. 'flan_jax.tasks.embedded').

  A module not found on sys.path is looked up in the working directory too, as
  `python -m` would: `--gin.TASK_MODULES="['flan_jax.tasks.embedded', 'my_tasks']"` finds
  ./my_tasks.py."""
  for name in modules:
    if not isinstance(name, str):
      raise ValueError(f"TASK_MODULES holds {name!r}, not a module name; give a list of names such as "
                       "['flan_jax.tasks.embedded', 'my_tasks']")
    try:
      try:
        importlib.import_module(name)
      except ModuleNotFoundError as e:
        cwd = os.getcwd()
        if e.name != name.split(".")[0] or cwd in sys.path:
          raise
        sys.path.append(cwd)
        importlib.import_module(name)
    except ImportError as e:
      where = f" (looked on sys.path and in the working directory {os.getcwd()})" if isinstance(
          e, ModuleNotFoundError) and e.name == name.split(".")[0] else ""
      raise ValueError(f"cannot import task module {name!r} (gin: TASK_MODULES): {e}{where}") from e


def _catalogue_hint(name: str) -> str:
  """Why a Flan 2022 catalogue name is not registered, if it is one."""
  from flan_jax.tasks.collections import catalogue  # pylint: disable=g-import-not-at-top
  family = re.sub(r"_(zsopt|zsnoopt|fsopt|fsnoopt|zscot|fscot)$", "", name)
  try:
    entry = catalogue.get(family)
  except KeyError:
    return ""
  return (f" {family!r} is a Flan 2022 task ({entry.collection}) whose module is not imported: add "
          f"'flan_jax.tasks.mixtures' to TASK_MODULES, e.g. "
          f"--gin.TASK_MODULES=\"['flan_jax.tasks.embedded', 'flan_jax.tasks.mixtures']\".")


def unknown_task_message(name: str, what: str = "MIXTURE_OR_TASK_NAME") -> str:
  """The error for a name that is neither a task, a family nor a mixture: close names that
  would be accepted, and where to list them."""
  from flan_jax.tasks import api  # pylint: disable=g-import-not-at-top
  known = api.accepted_names()
  close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
  hint = f" Did you mean: {', '.join(close)}?" if close else ""
  return (f"unknown task or mixture {name!r} (gin: {what}).{hint}{_catalogue_hint(name)} Accepted: a task "
          f"family (`flan-jax tasks list`; `--all` adds the embedded ones), a mixture (`flan-jax tasks list "
          f"--mixtures`), or a family's format variant FAMILY_zsopt/_zsnoopt/_fsopt/_fsnoopt/_zscot/_fscot; "
          f"the modules in TASK_MODULES register {len(known)} names.")


def get_mixture_or_task(name: str) -> seqio.Task | seqio.Mixture:
  """Looks a name up in both registries; a task family (as `flan-jax tasks list` prints it)
  is the mixture of its format variants at equal rates. An unknown name lists close ones."""
  if name in seqio.TaskRegistry.names() or name in seqio.MixtureRegistry.names():
    return seqio.get_mixture_or_task(name)
  from flan_jax.tasks import api  # pylint: disable=g-import-not-at-top
  family = api.register_family_mixture(name)
  if family is not None:
    return family
  raise ValueError(unknown_task_message(name))


def check_vocabulary(task: seqio.Task | seqio.Mixture, model_vocab_size: int) -> None:
  for feature_name, feature in task.output_features.items():
    size = feature.vocabulary.vocab_size
    if size > model_vocab_size:
      raise ValueError(
          f"feature {feature_name!r} of {task.name!r} uses a vocabulary of {size} ids but the model's "
          f"vocab_size is {model_vocab_size}; set the model's vocab_size (gin) to at least {size}")


class BatchIterator:
  """Per-host batches of a seqio task with a checkpointable position."""

  def __init__(self, mixture_or_task_name: str, task_feature_lengths: Mapping[str, int], global_batch_size: int,
               *, split: str = "train", feature_converter: str = "encdec", pack: bool = True,
               shuffle: bool = True, seed: int = 0, use_cached: bool = False, num_epochs: int | None = None,
               process_index: int | None = None, process_count: int | None = None,
               sharding: str = "per_process"):
    self.process_index = jax.process_index() if process_index is None else process_index
    self.process_count = jax.process_count() if process_count is None else process_count
    if global_batch_size % self.process_count:
      raise ValueError(f"BATCH_SIZE={global_batch_size} is not divisible by the {self.process_count} processes")
    if feature_converter not in FEATURE_CONVERTERS:
      raise ValueError(f"feature_converter={feature_converter!r}; use one of {sorted(FEATURE_CONVERTERS)}")
    self.task = get_mixture_or_task(mixture_or_task_name)
    self.global_batch_size = global_batch_size
    self.local_batch_size = global_batch_size // self.process_count
    if sharding not in DATA_SHARDING:
      raise ValueError(f"data sharding {sharding!r} (gin: train.data_sharding); use one of {DATA_SHARDING}")
    converter = FEATURE_CONVERTERS[feature_converter](pack=pack)
    per_process = sharding == "per_process"
    # seqio.get_dataset's steps, without its in-memory cache of small tasks: a run stops
    # part-way through an epoch, so the cache never fills and tf.data warns once per task
    # at exit ("did not fully read the dataset being cached"); re-tokenizing costs little.
    ds = self.task.get_dataset(
        dict(task_feature_lengths), split=split, use_cached=use_cached, shuffle=shuffle, seed=seed,
        shard_info=seqio.ShardInfo(self.process_index, self.process_count) if per_process else None,
        num_epochs=num_epochs, try_in_mem_cache=False)
    ds = converter(ds, task_feature_lengths=dict(task_feature_lengths))
    ds = ds.batch(self.local_batch_size if per_process else global_batch_size, drop_remainder=True)
    if not per_process:  # every process builds the global batch and keeps its rows
      lo = self.process_index * self.local_batch_size
      ds = ds.map(lambda b: {k: v[lo:lo + self.local_batch_size] for k, v in b.items()})
    self._ds = ds
    self.batches_taken = 0
    self._iter = None

  def global_shapes(self) -> dict[str, jax.ShapeDtypeStruct]:
    """Shapes of the global batch, known without reading data (seqio pads to fixed lengths)."""
    return {k: jax.ShapeDtypeStruct((self.global_batch_size,) + tuple(spec.shape[1:]), spec.dtype.as_numpy_dtype)
            for k, spec in self._ds.element_spec.items()}

  def restore(self, state: Mapping[str, int]) -> None:
    """Continues after the batches a checkpointed run had taken (the pipeline is deterministic)."""
    self.batches_taken = int(state["batches_taken"])
    self._iter = None

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self._iter is None:
      self._iter = self._ds.skip(self.batches_taken).prefetch(2).as_numpy_iterator()
    batch = next(self._iter)
    self.batches_taken += 1
    return batch

  def state(self) -> dict:
    return {"batches_taken": int(self.batches_taken)}


def non_padding_tokens(batch: Mapping[str, np.ndarray]) -> int:
  """Real (non-pad) input plus target tokens in a batch, for tokens/s."""
  total = 0
  for key in ("encoder_input_tokens", "decoder_target_tokens"):
    if key in batch:
      total += int(np.count_nonzero(batch[key]))
  return total


class DevicePrefetcher:
  """Batches read and put on the devices `depth` steps ahead, in a background thread (T5X's and
  MaxText's prefetch to device), so the train step never waits for the input pipeline.

  `next()` returns `(local numpy batch, global jax.Array batch)`; `state()` is the position of
  the batches handed out (not of those read ahead), so a checkpoint resumes where training was.
  """

  def __init__(self, batches: BatchIterator, shardings: Mapping, depth: int = 2):
    import queue
    import threading
    self._batches, self._shardings = batches, dict(shardings)
    self._start = batches.batches_taken
    self._handed = 0
    self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._fill, name="flan_jax-device-prefetch", daemon=True)
    self._thread.start()

  def _fill(self) -> None:
    try:
      while not self._stop.is_set():
        local = next(self._batches)
        arrays = {k: jax.make_array_from_process_local_data(self._shardings[k], np.asarray(local[k]))
                  for k in self._shardings}
        while not self._stop.is_set():
          try:
            self._queue.put((local, arrays), timeout=0.1)
            break
          except Exception:  # queue.Full: wait for the consumer
            continue
    except BaseException as e:  # StopIteration or a pipeline error: handed to the consumer
      self._queue.put(e)

  def __iter__(self):
    return self

  def __next__(self) -> tuple[dict[str, np.ndarray], dict[str, jax.Array]]:
    item = self._queue.get()
    if isinstance(item, BaseException):
      self._queue.put(item)  # every later call raises it too
      raise item
    self._handed += 1
    return item

  def state(self) -> dict:
    return {"batches_taken": int(self._start + self._handed)}

  def close(self) -> None:
    self._stop.set()
    while self._thread.is_alive():
      try:
        self._queue.get(timeout=0.1)
      except Exception:  # queue.Empty
        pass
