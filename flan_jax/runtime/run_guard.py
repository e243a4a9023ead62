"""What keeps a training run's MODEL_DIR safe: one writer, clean stops, up-front checks.

Exit codes of `flan-jax train` (sysexits.h values, so schedulers can tell them apart):

| code | meaning | what to do |
| --- | --- | --- |
| 0 | finished (or already at TRAIN_STEPS) | |
| 2 | configuration error (gin, task, path, unreadable checkpoint) | fix what the message names |
| 65 | diverged: non-finite loss, gradient norm or state | lower the rate or resume from the named checkpoint |
| 73 | MODEL_DIR is locked by another trainer | wait for it, or use another MODEL_DIR |
| 74 | a checkpoint save failed (disk full, permissions) | free space / fix permissions, rerun to resume |
| 75 | preempted (SIGTERM or SIGINT): a checkpoint of the current step was saved | rerun the same command |

A second SIGTERM/SIGINT while the first is being handled exits at once with 128+signal
(143 / 130), without saving.
"""
from __future__ import annotations

import datetime
import errno
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid

import jax
import numpy as np

EXIT_CONFIG = 2
EXIT_DIVERGED = 65
EXIT_LOCKED = 73
EXIT_SAVE_FAILED = 74
EXIT_PREEMPTED = 75


class RunStopped(Exception):
  """Training stopped on purpose; `exit_code` tells the scheduler why."""
  exit_code = 1


class Preempted(RunStopped):
  exit_code = EXIT_PREEMPTED


class Diverged(RunStopped):
  exit_code = EXIT_DIVERGED


class SaveFailed(RunStopped):
  exit_code = EXIT_SAVE_FAILED


class WriterLockHeld(RunStopped):
  exit_code = EXIT_LOCKED


class UnsafeLockFile(WriterLockHeld):
  """MODEL_DIR/writer.lock is a symbolic link or not a regular file: never written through."""
  exit_code = EXIT_CONFIG


# ----------------------------------------------------------------------------------------
# One writer per MODEL_DIR.

LOCK_NAME = "writer.lock"


def _is_remote(path: str) -> bool:
  return "://" in path


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _describe(holder: dict) -> str:
  return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
          f"(started {holder.get('started', '?')})")


class WriterLock:
  """An exclusive lock on MODEL_DIR, held by process 0 of a training run.

  Local and network file systems: `flock` on MODEL_DIR/writer.lock. The kernel drops the
  lock when its process dies, so a trainer killed with `kill -9` leaves a file whose lock
  is free: the next trainer says it found a stale lock and takes over. The file holds the
  holder's pid, host and start time so a refused trainer can name the running one.

  Object stores (`gs://`, `s3://`, ...) have no locks: there the lock is a best-effort
  marker file refreshed every `heartbeat_s` seconds; a marker not refreshed for
  `stale_after_s` is considered stale. Two trainers starting within the same second can
  both miss each other's marker; the marker is re-read after writing to narrow that window.
  """

  def __init__(self, model_dir: str, *, heartbeat_s: float = 60.0, stale_after_s: float = 300.0,
               use_marker: bool | None = None):
    self.model_dir = model_dir
    self.path = os.path.join(model_dir, LOCK_NAME)
    self.use_marker = _is_remote(model_dir) if use_marker is None else use_marker
    self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
    self.stale: dict | None = None  # the previous holder, when its lock was stale
    self._fd = None
    self._created_dir = False
    self._stop = threading.Event()
    self._thread = None
    self._me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now(),
                "token": uuid.uuid4().hex, "command": " ".join(sys.argv)[:500]}

  # -- local: flock ------------------------------------------------------------------------

  def _acquire_flock(self) -> None:
    import fcntl
    import stat
    try:  # O_NOFOLLOW: a symbolic link planted at the lock's path is refused, not written through
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
      if e.errno in (errno.ELOOP, errno.EMLINK):
        raise UnsafeLockFile(f"lock file {self.path} is a symbolic link (to {os.readlink(self.path)!r}); "
                             "flan-jax never writes through one: remove it and rerun") from None
      raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
      os.close(fd)
      raise UnsafeLockFile(f"lock file {self.path} is not a regular file; remove it and rerun")
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      holder = _read_holder(fd)
      os.close(fd)
      if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
        raise WriterLockHeld(
            f"MODEL_DIR {self.model_dir} is in use by another trainer: {_describe(holder)}; lock file "
            f"{self.path}. Wait for it to finish (or stop it), or choose another MODEL_DIR.") from None
      raise
    previous = _read_holder(fd)
    if previous:
      self.stale = previous
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(self._me).encode(), 0)
    os.fsync(fd)
    self._fd = fd

  # -- object stores: a marker file --------------------------------------------------------

  def _acquire_marker(self) -> None:
    from etils import epath
    marker = epath.Path(self.path)
    if marker.exists():
      try:
        holder = json.loads(marker.read_text() or "{}")
      except (ValueError, OSError):
        holder = {}
      age = time.time() - float(holder.get("heartbeat", 0))
      if age < self.stale_after_s:
        raise WriterLockHeld(
            f"MODEL_DIR {self.model_dir} is in use by another trainer: {_describe(holder)}; marker "
            f"{self.path} refreshed {age:.0f}s ago (object stores have no locks: the marker is "
            f"stale after {self.stale_after_s:.0f}s without refresh; delete it if that trainer is gone).")
      self.stale = holder
    marker.parent.mkdir(parents=True, exist_ok=True)
    self._write_marker(marker)
    time.sleep(1.0)
    holder = json.loads(marker.read_text() or "{}")
    if holder.get("token") != self._me["token"]:
      raise WriterLockHeld(f"MODEL_DIR {self.model_dir} was claimed at the same time by {_describe(holder)}; "
                           f"marker {self.path}")
    self._thread = threading.Thread(target=self._heartbeat, args=(marker,), daemon=True)
    self._thread.start()

  def _write_marker(self, marker) -> None:
    marker.write_text(json.dumps(dict(self._me, heartbeat=time.time())))

  def _heartbeat(self, marker) -> None:
    while not self._stop.wait(self.heartbeat_s):
      try:
        self._write_marker(marker)
      except OSError:
        pass

  # -- both --------------------------------------------------------------------------------

  def acquire(self) -> "WriterLock":
    if self.use_marker:
      self._acquire_marker()
    else:
      self._created_dir = not os.path.exists(self.model_dir)
      os.makedirs(self.model_dir, exist_ok=True)
      self._acquire_flock()
    return self

  def release(self) -> None:
    if self._fd is not None:
      import fcntl
      os.ftruncate(self._fd, 0)  # an empty file: released cleanly, not stale
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None
      if self._created_dir and os.listdir(self.model_dir) == [LOCK_NAME]:
        # A run that stopped before writing anything (e.g. an unknown task) leaves no trace.
        os.remove(self.path)
        os.rmdir(self.model_dir)
    if self._thread is not None:
      self._stop.set()
      self._thread.join(timeout=5)
      self._thread = None
      from etils import epath
      try:
        epath.Path(self.path).unlink()
      except OSError:
        pass


# ----------------------------------------------------------------------------------------
# What a run is: recorded with it, checked on resume.

RUN_FILE = "run.json"


def run_identity(**settings) -> dict:
  """The settings that make a run's data stream and model what they are, as JSON values."""
  return json.loads(json.dumps(settings, sort_keys=True))


def write_owned_file(path: str, text: str) -> None:
  """Writes a file the run owns atomically: a temporary file created exclusively, then
  renamed over PATH (a symbolic link at PATH is replaced, never written through)."""
  if "://" in path:
    from etils import epath
    epath.Path(path).write_text(text)
    return
  import tempfile
  fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=os.path.dirname(path) or ".")  # O_EXCL
  try:
    with os.fdopen(fd, "w") as f:
      f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def record_run(model_dir: str, identity: dict) -> None:
  write_owned_file(os.path.join(model_dir, RUN_FILE), json.dumps(identity, indent=2, sort_keys=True) + "\n")


def _changes(old: dict, new: dict, prefix: str = "") -> list[str]:
  out = []
  for key in sorted(set(old) | set(new)):
    a, b = old.get(key, "(unset)"), new.get(key, "(unset)")
    if isinstance(a, dict) and isinstance(b, dict) and prefix == "":
      out += _changes(a, b, f"{key}.")
    elif a != b:
      out.append(f"{prefix}{key}: {a!r} when the run started, {b!r} now")
  return out


# Model fields that may change on resume: they change how, not what, is computed (the same
# list as models.family.HOW_NOT_WHAT, which this layer cannot import).
_MAY_CHANGE = ("model.dropout_rate", "model.remat_policy", "model.dtype", "model.shard_residual",
               "model.attention_kernel")


def check_same_run(model_dir: str, identity: dict, allow_changed: bool, say=print) -> None:
  """Before resuming MODEL_DIR: the recorded run (run.json) must be this one. Raises
  ValueError naming every change, unless `allow_changed` (train.allow_changed_run)."""
  path = os.path.join(model_dir, RUN_FILE)
  if "://" in path:
    from etils import epath
    if not epath.Path(path).exists():
      return
    text = epath.Path(path).read_text()
  else:
    if not os.path.isfile(path):
      return  # a run from before run.json
    with open(path) as f:
      text = f.read()
  try:
    old = json.loads(text)
  except ValueError:
    raise ValueError(f"{path} is not valid JSON; restore it, or pass --gin.train.allow_changed_run=True to record "
                     "this run's settings anew") from None
  changes = [c for c in _changes(old, identity) if not c.startswith(_MAY_CHANGE)]
  if not changes:
    return
  if allow_changed:
    say(f"note: resuming {model_dir} with changed settings (train.allow_changed_run=True): " + "; ".join(changes))
    return
  raise ValueError(f"MODEL_DIR {model_dir} was started with other settings ({path}): " + "; ".join(changes)
                   + ". Resuming would continue its data stream with another meaning; use a new MODEL_DIR, "
                   "restore the settings, or pass --gin.train.allow_changed_run=True to continue anyway")


def _read_holder(fd: int) -> dict:
  try:
    text = os.pread(fd, 65536, 0).decode(errors="replace").strip()
    return json.loads(text) if text else {}
  except (OSError, ValueError):
    return {"pid": "?", "host": "? (unreadable lock file)"}


def acquire_writer_lock(model_dir: str, say=print) -> WriterLock | None:
  """Process 0 locks MODEL_DIR; every process learns whether it succeeded.

  Returns the lock on process 0 (None on the others); raises WriterLockHeld on every
  process when MODEL_DIR is in use.
  """
  lock, error = None, None
  if jax.process_index() == 0:
    try:
      lock = WriterLock(model_dir).acquire()
    except WriterLockHeld as e:
      error = e
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    ok = multihost_utils.broadcast_one_to_all(np.int32(error is None))
    if not int(ok) and error is None:
      error = WriterLockHeld(f"MODEL_DIR {model_dir} is in use by another trainer (process 0 could not lock it)")
  if error is not None:
    raise error
  if lock is not None and lock.stale:
    say(f"note: stale lock in {lock.path} from {_describe(lock.stale)}: that trainer is gone "
        "(killed?); taking over")
  return lock


# ----------------------------------------------------------------------------------------
# Preemption: SIGTERM / SIGINT finish the step, save, exit 75.


class StopSignals:
  """Turns SIGTERM/SIGINT into a request to stop after the current step.

  The first signal sets a flag; the training loop asks `should_stop()` once per step. In a
  multi-process run the processes agree on the step: each step every process contributes
  its flag to a tiny all-reduce that is read one step later, so all of them see the same
  value at the same step without waiting on the device each step. A second signal exits
  at once (128 + signal number), without saving.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.received: str | None = None
    self._previous = {}
    self._pending = None  # the all-reduce started at the previous step
    self._reduce = None

  def __enter__(self) -> "StopSignals":
    if threading.current_thread() is threading.main_thread():
      for sig in self.SIGNALS:
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous.clear()

  def _handle(self, signum, frame) -> None:
    name = signal.Signals(signum).name
    if self.received is not None:
      print(f"flan-jax train: second {name}: exiting now without saving", file=sys.stderr, flush=True)
      os._exit(128 + signum)
    self.received = name
    print(f"flan-jax train: {name} received: finishing this step, then saving a checkpoint "
          "(send it again to exit at once)", file=sys.stderr, flush=True)

  def _start_reduce(self, flag: bool):
    if self._reduce is None:
      from jax.sharding import Mesh, NamedSharding, PartitionSpec
      devices = np.array([next(d for d in jax.devices() if d.process_index == p)
                          for p in range(jax.process_count())])
      mesh = Mesh(devices, ("processes",))
      self._in_sharding = NamedSharding(mesh, PartitionSpec("processes"))
      self._reduce = jax.jit(lambda x: x.max(), out_shardings=NamedSharding(mesh, PartitionSpec()))
    local = np.array([int(flag)], np.int32)
    return self._reduce(jax.make_array_from_process_local_data(self._in_sharding, local))

  def should_stop(self) -> bool:
    """Called once per step on every process, after the step is dispatched."""
    if jax.process_count() == 1:
      return self.received is not None
    previous, self._pending = self._pending, self._start_reduce(self.received is not None)
    return previous is not None and bool(np.asarray(previous.addressable_data(0)))


# ----------------------------------------------------------------------------------------
# Up-front checks of a run's settings.


def check_positive(**values) -> None:
  for name, value in values.items():
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
      raise ValueError(f"{name}={value!r} must be a positive integer (--gin.{name}=N)")


def check_model_dir(model_dir: str) -> None:
  """MODEL_DIR must be a directory we can write (or creatable); checked before anything is written."""
  if _is_remote(model_dir):
    return
  path = os.path.abspath(model_dir)
  probe = path
  while not os.path.exists(probe):
    parent = os.path.dirname(probe)
    if parent == probe:
      break
    probe = parent
  if not os.path.isdir(probe):
    what = "is a file" if probe == path else f"is inside {probe}, which is a file"
    raise ValueError(f"MODEL_DIR {model_dir} {what}; MODEL_DIR must be a directory (--gin.MODEL_DIR=DIR)")
  try:
    test = os.path.join(probe, f".flan_jax_write_test_{os.getpid()}")
    with open(test, "w"):
      pass
    os.remove(test)
  except OSError as e:
    where = "" if probe == path else f" (its nearest existing parent {probe})"
    raise ValueError(f"MODEL_DIR {model_dir}{where} is not writable: {e.strerror or e}; "
                     "choose a writable --gin.MODEL_DIR") from None
