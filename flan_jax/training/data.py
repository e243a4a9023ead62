"""Input pipeline: seqio task/mixture -> feature converter -> per-host numpy batches.

Each process reads its own shard (`seqio.ShardInfo(process_index, process_count)`)
and yields `BATCH_SIZE / process_count` rows; `trainer.global_batch` assembles the
global `jax.Array`s. The pipeline is deterministic for a given seed, so its
position is just the number of batches taken: resuming skips that many.

`ReadAhead` reads batches ahead of training in a background thread; at every checkpoint the
batches it holds are saved beside the checkpoints (`save_lookahead`), so that a resumed run
trains on them at once while the input pipeline is rebuilt (and skipped to its position) in
the background. seqio and TensorFlow are imported only where a pipeline is built.
"""
from __future__ import annotations

import collections
import json
import os
import threading
import zipfile
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import jax
import numpy as np

from flan_jax.tasks import cache_reader  # light: no seqio or TensorFlow

if TYPE_CHECKING:
  import seqio

# per_process: each process reads its own seqio shard (scales to pods; the data a run
#   sees depends on the number of processes).
# global_slice: each process builds the same global batch and keeps its rows (every
#   process count sees identical batches; costs each host the whole batch's preprocessing).
DATA_SHARDING = ("per_process", "global_slice")

FEATURE_CONVERTERS = {  # name -> seqio class (seqio is imported only when a pipeline is built)
    "encdec": "EncDecFeatureConverter",
    "decoder": "DecoderFeatureConverter",
    "prefix_lm": "PrefixLMFeatureConverter",
}


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
    from flan_jax.tasks import lookup  # pylint: disable=g-import-not-at-top  (seqio: not for a resumed run's first steps)
    self.task = lookup.get_mixture_or_task(mixture_or_task_name)
    self.global_batch_size = global_batch_size
    self.local_batch_size = global_batch_size // self.process_count
    if sharding not in DATA_SHARDING:
      raise ValueError(f"data sharding {sharding!r} (gin: train.data_sharding); use one of {DATA_SHARDING}")
    import seqio  # pylint: disable=g-import-not-at-top
    converter = getattr(seqio, FEATURE_CONVERTERS[feature_converter])(pack=pack)
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

  def close(self) -> None:
    """Drops the tf.data iterator now, while Python runs: one left to interpreter exit makes
    TensorFlow warn once per generator dataset that it could not finalize it."""
    self._iter = None


def non_padding_tokens(batch: Mapping[str, np.ndarray]) -> int:
  """Real (non-pad) input plus target tokens in a batch, for tokens/s."""
  total = 0
  for key in ("encoder_input_tokens", "decoder_target_tokens"):
    if key in batch:
      total += int(np.count_nonzero(batch[key]))
  return total


class ReadAhead:
  """Local batches read up to `depth` steps ahead of training in a background thread.

  `open_source(position)` is called in that thread and returns an iterator of the batches from
  `position` on; `saved` are batches already at hand for the positions `start`, `start + 1`, ...
  (a resumed run's read-ahead, `load_lookahead`): they are handed out first and the source is
  opened after them. An error of the source (a bad task name, a malformed row) is raised by
  the `next()` that reaches it. `state()` is the position of the batches handed out, and
  `ahead()` the batches read beyond it, which `save_lookahead` keeps at a checkpoint.
  """

  def __init__(self, open_source: Callable[[int], Iterator[dict]], start: int, depth: int,
               saved: Sequence[dict] = (), *, defer: bool = False):
    self._start, self._handed, self._depth = int(start), 0, max(1, int(depth))
    # Held back until `start()`: no thread while kept batches last; else 2 batches ahead, as
    # tf.data's prefetch, so that reading far ahead does not compete with compiling the step.
    self._limit = min(2, self._depth) if defer else self._depth
    self._items: collections.deque = collections.deque(saved)
    self._error: BaseException | None = None
    self._done = self._stop = False
    self._cond = threading.Condition()
    self._thread = threading.Thread(target=self._fill, args=(open_source, self._start + len(self._items)),
                                    name="flan_jax-read-ahead", daemon=True)
    if not (defer and self._items):
      self._thread.start()

  def start(self) -> None:
    """Reads up to `depth` ahead, if `defer` held it back (e.g. until the first step ran: building
    a pipeline in Python competes with tracing the step for the interpreter lock and the cores)."""
    with self._cond:
      self._limit = self._depth
      self._cond.notify_all()
    if self._thread.ident is None:
      self._thread.start()

  def _fill(self, open_source, position: int) -> None:
    source = None
    try:
      source = open_source(position)
      while True:
        with self._cond:
          while len(self._items) >= self._limit and not self._stop:
            self._cond.wait()
          if self._stop:
            return
        batch = next(source)
        with self._cond:
          self._items.append(batch)
          self._cond.notify_all()
    except StopIteration:
      pass
    except BaseException as e:  # handed to the consumer
      with self._cond:
        self._error = e
    finally:
      if source is not None and hasattr(source, "close"):
        source.close()  # in this thread: a generator's `finally` runs where it ran
      with self._cond:
        self._done = True
        self._cond.notify_all()

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    with self._cond:
      if not self._items and self._thread.ident is None:
        self._thread.start()
      while not self._items and self._error is None and not self._done:
        self._cond.wait()
      if self._items:
        self._handed += 1
        self._cond.notify_all()
        return self._items.popleft()
      if self._error is not None:
        raise self._error
      raise StopIteration

  def state(self) -> dict:
    return {"batches_taken": self._start + self._handed}

  def ahead(self) -> list[dict]:
    """The batches read beyond `state()`, in order."""
    with self._cond:
      return list(self._items)

  def close(self, timeout: float | None = None) -> None:
    """Stops reading; waits for the thread to close its source. A pipeline still being built
    finishes that first: a thread left inside TensorFlow at interpreter exit aborts the process."""
    with self._cond:
      self._stop = True
      self._cond.notify_all()
    if self._thread.ident is not None:
      self._thread.join(timeout)


def pipeline_from(batches: BatchIterator) -> Callable[[int], Iterator[dict]]:
  """`ReadAhead`'s source over a pipeline built already."""

  def open_at(position: int) -> Iterator[dict]:
    batches.restore({"batches_taken": position})
    try:
      yield from batches
    finally:
      batches.close()

  return open_at


def open_pipeline(task_modules: Sequence[str], mixture_or_task_name: str,
                  task_feature_lengths: Mapping[str, int], global_batch_size: int, *,
                  vocab_size: int, seqio_cache_dirs: Sequence[str] = (), data_dir: str | None = None,
                  **kwargs):
  """(task, BatchIterator) of a training run, the one place `flan-jax train` builds its input:
  imports the task modules (reading prepared data from `data_dir`, see `lookup`), then, with USE_CACHED_TASKS reading `flan-jax data cache` output
  from `seqio_cache_dirs` (T5X's --seqio_additional_cache_dirs) for this pipeline only, finds
  the task, checks the model's vocabulary against it and builds the batches (seqio hands the
  lengths to every dataset it builds, and with them the few-shot budget: `render.py`).
  `kwargs` go to `BatchIterator`."""
  from flan_jax.tasks import lookup  # pylint: disable=g-import-not-at-top
  lookup.import_task_modules(task_modules, data_dir=data_dir)
  with cache_reader.using_cache_dirs(seqio_cache_dirs):
    task = lookup.get_mixture_or_task(mixture_or_task_name)
    check_vocabulary(task, vocab_size)
    return task, BatchIterator(task.name, task_feature_lengths, global_batch_size, **kwargs)


def pipeline_built_later(*args, **kwargs) -> Callable[[int], Iterator[dict]]:
  """`ReadAhead`'s source that builds the pipeline (`open_pipeline`, same arguments) itself, in
  the reading thread, so a resumed run trains on its kept batches meanwhile."""

  def open_at(position: int) -> Iterator[dict]:
    _, batches = open_pipeline(*args, **kwargs)
    yield from pipeline_from(batches)(position)

  return open_at


_LOOKAHEAD = "input_lookahead"


def _lookahead_path(model_dir: str, process_index: int) -> str:
  return os.path.join(model_dir, f"{_LOOKAHEAD}.{process_index}.npz")


def save_lookahead(model_dir: str, position: int, batches: Sequence[Mapping[str, np.ndarray]],
                   fingerprint: Mapping[str, Any], process_index: int | None = None) -> None:
  """Keeps the batches read ahead of `position` (the checkpoint's data position) in MODEL_DIR,
  one file per process, replaced atomically. `fingerprint` names what defines the stream (task,
  lengths, batch, seed, ...): a run with another one does not use them."""
  process_index = jax.process_index() if process_index is None else process_index
  path = _lookahead_path(model_dir, process_index)
  if "://" in model_dir:
    return  # object stores: not worth a round trip per checkpoint
  if not batches:
    if os.path.exists(path):
      os.remove(path)
    return
  meta = json.dumps({"position": int(position), "fingerprint": json.loads(json.dumps(fingerprint))})
  arrays = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
  tmp = f"{path}.tmp.npz"
  np.savez(tmp, __meta__=np.array(meta), **arrays)
  os.replace(tmp, path)


class Lookahead:
  """Batches `save_lookahead` kept: positions `position`, `position + 1`, ..."""

  def __init__(self, position: int, arrays: Mapping[str, np.ndarray]):
    self.position = position
    self.arrays = dict(arrays)
    self.batches = [{k: v[i] for k, v in self.arrays.items()} for i in range(len(next(iter(arrays.values()))))]

  def global_shapes(self, global_batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    return {k: jax.ShapeDtypeStruct((global_batch_size,) + v.shape[2:], v.dtype) for k, v in self.arrays.items()}


def load_lookahead(model_dir: str, fingerprint: Mapping[str, Any],
                   process_index: int | None = None) -> Lookahead | None:
  """The batches `save_lookahead` kept for this stream, or None (none kept, another stream,
  an unreadable file: the pipeline then starts as usual)."""
  process_index = jax.process_index() if process_index is None else process_index
  path = _lookahead_path(model_dir, process_index)
  if "://" in model_dir or not os.path.isfile(path):
    return None
  try:
    with np.load(path) as f:
      meta = json.loads(str(f["__meta__"]))
      if meta["fingerprint"] != json.loads(json.dumps(fingerprint)):
        return None
      return Lookahead(int(meta["position"]), {k: f[k] for k in f.files if k != "__meta__"})
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
    return None
