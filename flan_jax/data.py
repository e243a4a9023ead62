"""Input pipeline: seqio task/mixture -> feature converter -> per-host numpy batches.

Each process reads its own shard (`seqio.ShardInfo(process_index, process_count)`)
and yields `BATCH_SIZE / process_count` rows; `trainer.global_batch` assembles the
global `jax.Array`s. The pipeline is deterministic for a given seed, so its
position is just the number of batches taken: resuming skips that many.
"""
from __future__ import annotations

import difflib
import importlib
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
  """Imports the modules whose import registers tasks (e.g. 'flan_jax.tasks.embedded')."""
  for name in modules:
    try:
      importlib.import_module(name)
    except ImportError as e:
      raise ValueError(f"cannot import task module {name!r} (gin: train.task_modules): {e}") from e


def get_mixture_or_task(name: str) -> seqio.Task | seqio.Mixture:
  """Looks a name up in both registries; an unknown name lists the closest ones."""
  known = list(seqio.TaskRegistry.names()) + list(seqio.MixtureRegistry.names())
  if name not in known:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(
        f"unknown task or mixture {name!r} (gin: MIXTURE_OR_TASK_NAME).{hint} {len(known)} are registered; "
        "`flan-jax tasks list` shows them, and train.task_modules lists the modules that register them.")
  return seqio.get_mixture_or_task(name)


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
    ds = seqio.get_dataset(
        self.task.name, dict(task_feature_lengths), converter, dataset_split=split, use_cached=use_cached,
        shuffle=shuffle, num_epochs=num_epochs, seed=seed, verbose=False,
        shard_info=seqio.ShardInfo(self.process_index, self.process_count) if per_process else None,
        batch_size=self.local_batch_size if per_process else global_batch_size)
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
