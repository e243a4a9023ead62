"""`--target=local`: N `flan-jax train` processes on this machine, joined by jax.distributed.

The coordinator listens on 127.0.0.1:<free port>; process i gets JAX_PROCESS_ID=i and,
on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=<devices_per_process>. Process
0's output is streamed, the others go to <log_dir>/process_<i>.log. If any process
fails, the others are stopped and the launch fails with its exit code.
"""
from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Mapping

from flan_jax.launch.job import Job
from flan_jax.launch.steps import Launch, quote, shell_join

_DEVICE_COUNT_FLAG = re.compile(r"--xla_force_host_platform_device_count=\S*")


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def process_envs(num_processes: int, devices_per_process: int, port: int, platform: str = "cpu",
                 base_xla_flags: str | None = None) -> list[dict[str, str]]:
  """The environment each process adds to ours (read by flan_jax/runtime/distributed.py)."""
  if num_processes < 1 or devices_per_process < 1:
    raise ValueError(f"--num_processes={num_processes} and --devices_per_process={devices_per_process} must be >= 1")
  base = os.environ.get("XLA_FLAGS", "") if base_xla_flags is None else base_xla_flags
  xla_flags = " ".join(_DEVICE_COUNT_FLAG.sub("", base).split()
                       + [f"--xla_force_host_platform_device_count={devices_per_process}"])
  envs = []
  for i in range(num_processes):
    env = {"JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": str(num_processes),
           "JAX_PROCESS_ID": str(i)}
    if platform == "cpu":
      env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags)
    else:  # one slice of this machine's accelerators per process
      env["JAX_LOCAL_DEVICE_IDS"] = ",".join(str(d) for d in range(i * devices_per_process,
                                                                   (i + 1) * devices_per_process))
    env["PYTHONUNBUFFERED"] = "1"
    envs.append(env)
  return envs


@dataclasses.dataclass(frozen=True)
class ProcessGroup:
  """One command run as len(envs) processes; fails (stopping the rest) as soon as one fails."""
  argv: tuple[str, ...]
  envs: tuple[Mapping[str, str], ...]
  log_dir: str
  note: str = ""
  always: bool = False

  def log_path(self, i: int) -> str:
    return os.path.join(self.log_dir, f"process_{i}.log")

  def render(self) -> str:
    lines = [f"mkdir -p {quote(self.log_dir)}"]
    for i, env in enumerate(self.envs):
      out = (f" 2>&1 | tee {quote(self.log_path(i))}" if i == 0
             else f" > {quote(self.log_path(i))} 2>&1")
      lines.append(shell_join(self.argv, env) + out + " &")
    lines.append("wait")
    return "\n".join(lines)

  def programs(self) -> list[str]:
    return [self.argv[0]]

  def run(self) -> int:
    os.makedirs(self.log_dir, exist_ok=True)
    procs: list[subprocess.Popen] = []
    logs = [open(self.log_path(i), "w") for i in range(len(self.envs))]
    streamer = None
    try:
      for i, env in enumerate(self.envs):
        out = subprocess.PIPE if i == 0 else logs[i]
        procs.append(subprocess.Popen(self.argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                      text=True, start_new_session=True))
      streamer = threading.Thread(target=_tee, args=(procs[0].stdout, logs[0]), daemon=True)
      streamer.start()
      while True:
        codes = [p.poll() for p in procs]
        failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
        if failed:
          i, code = failed[0]
          _stop(p for p in procs if p.poll() is None)
          streamer.join(timeout=10)
          others = [j for j in range(len(procs)) if j != i]
          print(f"# process {i} exited with code {code}; stopped processes {others}", file=sys.stderr, flush=True)
          if i:
            print(f"# last lines of {self.log_path(i)}:\n{_tail(self.log_path(i))}", file=sys.stderr, flush=True)
          return code if code > 0 else 128 - code  # killed by a signal: shell convention
        if all(c == 0 for c in codes):
          streamer.join(timeout=10)
          return 0
        time.sleep(0.5)
    finally:
      _stop(p for p in procs if p.poll() is None)  # KeyboardInterrupt, or an error starting one
      for f in logs:
        f.close()


def _tee(stream, log) -> None:
  for line in stream:
    sys.stdout.write(line)
    sys.stdout.flush()
    log.write(line)
    log.flush()


def _stop(procs, grace_s: float = 10.0) -> None:
  """SIGTERM to each process group we started, SIGKILL after `grace_s`."""
  procs = list(procs)
  for p in procs:
    try:
      os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
      pass
  deadline = time.monotonic() + grace_s
  for p in procs:
    try:
      p.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      try:
        os.killpg(p.pid, signal.SIGKILL)
      except ProcessLookupError:
        pass
      p.wait()


def _tail(path: str, lines: int = 30) -> str:
  with open(path, errors="replace") as f:
    return "".join(f.readlines()[-lines:]).rstrip()


def build(job: Job, *, num_processes: int, devices_per_process: int = 1, platform: str = "cpu",
          port: int | None = None, log_dir: str) -> Launch:
  port = free_port() if port is None else port
  envs = [{**env, **job.env} for env in process_envs(num_processes, devices_per_process, port, platform)]
  argv = tuple(job.train_argv(python=sys.executable))
  devices = f"{devices_per_process} {'CPU' if platform == 'cpu' else 'local'} device(s)"
  summary = (f"local: {job.name}, {num_processes} processes x {devices}, coordinator 127.0.0.1:{port}",
             f"MODEL_DIR {job.model_dir}; process 0 streams below, the others log to {log_dir}")
  group = ProcessGroup(argv, tuple(envs), log_dir,
                       note=f"start {num_processes} processes; wait for all (any failure stops the rest)")
  return Launch("local", summary, (group,))
