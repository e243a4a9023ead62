"""A launch is a list of steps; the same steps are printed by `--dry_run` and run otherwise.

Each step renders as shell (commands, heredocs for the files it writes, a polling loop),
so a dry run's output is the exact script of what the launcher would do. Executing runs
the commands with `subprocess` (argument vectors, no shell), stops at the first failure
and then still runs the steps marked `always` (deleting a TPU VM after a failed run).
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess
import sys
import time
from typing import Callable, Mapping, Sequence

WRAP = 100  # commands longer than this print one option per line
VALUE_FLAGS = {"--command"}  # options given as two words


def quote(word: str) -> str:
  """shlex.quote, but double quotes where they need no escapes: nested layers stay readable."""
  quoted = shlex.quote(word)
  if quoted == word or any(c in word for c in '"$`\\!'):
    return quoted
  return f'"{word}"'


def shell_join(argv: Sequence[str], env: Mapping[str, str] | None = None, wrap: bool = True) -> str:
  """`argv` as one shell command line; long ones wrapped one option per line."""
  words = [f"{k}={quote(v)}" for k, v in (env or {}).items()] + [quote(a) for a in argv]
  line = " ".join(words)
  if not wrap or len(line) <= WRAP:
    return line
  # Keep `KEY=V ... program subcommand` together, then one option (with its value) per line.
  head = next((i for i, w in enumerate(words) if w.startswith("--")), len(words))
  rest, i = [], head
  while i < len(words):
    takes_value = words[i] in VALUE_FLAGS and i + 1 < len(words)
    rest.append(" ".join(words[i:i + 2]) if takes_value else words[i])
    i += 2 if takes_value else 1
  words = [" ".join(words[:head])] + rest
  return " \\\n    ".join(words)


@dataclasses.dataclass(frozen=True)
class Command:
  """Runs `argv` (with `env` added); skipped when `unless` exits 0 (reuse what exists)."""
  argv: tuple[str, ...]
  note: str = ""
  env: Mapping[str, str] = dataclasses.field(default_factory=dict)
  unless: tuple[str, ...] | None = None
  always: bool = False  # also after an earlier step failed (cleanup)

  def render(self) -> str:
    cmd = shell_join(self.argv, self.env)
    if self.unless:
      return f"{shell_join(self.unless)} >/dev/null 2>&1 || \\\n  {cmd}"
    return cmd

  def programs(self) -> list[str]:
    return [self.argv[0]] + ([self.unless[0]] if self.unless else [])

  def run(self) -> int:
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if self.unless and subprocess.run(self.unless, **quiet).returncode == 0:
      print("# exists already: reusing it", flush=True)
      return 0
    return subprocess.run(self.argv, env={**os.environ, **self.env}).returncode


def heredoc_delimiter(content: str) -> str:
  """A heredoc end word that no line of `content` equals, so the content cannot end it early."""
  lines = set(content.splitlines())
  end, n = "FLAN_JAX_EOF", 0
  while end in lines:
    n += 1
    end = f"FLAN_JAX_EOF_{n}"
  return end


@dataclasses.dataclass(frozen=True)
class WriteFile:
  """Writes `content` to `path` (an sbatch script, a SkyPilot task)."""
  path: str
  content: str
  note: str = ""
  always: bool = False

  def render(self) -> str:
    end = heredoc_delimiter(self.content)
    return f"cat > {quote(self.path)} <<'{end}'\n{self.content.rstrip()}\n{end}"

  def programs(self) -> list[str]:
    return []

  def run(self) -> int:
    os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
    with open(self.path, "w") as f:
      f.write(self.content.rstrip() + "\n")
    print(f"# wrote {self.path}", flush=True)
    return 0


@dataclasses.dataclass(frozen=True)
class WaitFor:
  """Polls `argv` (which prints a state) until it prints `until`; fails on a state in `fail_on`."""
  argv: tuple[str, ...]
  until: str
  fail_on: tuple[str, ...] = ()
  interval_s: int = 30
  note: str = ""
  always: bool = False

  def render(self) -> str:
    return f'until [ "$({shell_join(self.argv)})" = {self.until} ]; do sleep {self.interval_s}; done'

  def programs(self) -> list[str]:
    return [self.argv[0]]

  def run(self) -> int:
    last = None
    while True:
      out = subprocess.run(self.argv, capture_output=True, text=True)
      state = out.stdout.strip()
      if state == self.until:
        return 0
      if state in self.fail_on:
        print(f"# state {state}: giving up", file=sys.stderr, flush=True)
        return 1
      if state != last:
        print(f"# state: {state or out.stderr.strip()[-200:]}; waiting for {self.until}", flush=True)
        last = state
      time.sleep(self.interval_s)


@dataclasses.dataclass(frozen=True)
class Launch:
  """What one `flan-jax launch` does: a header describing the run, then its steps."""
  target: str
  summary: tuple[str, ...]
  steps: tuple  # of Command | WriteFile | WaitFor | local.ProcessGroup

  def render(self) -> str:
    out = [f"# {line}" for line in self.summary]
    for step in self.steps:
      out.append("")
      if step.note:
        out.append(f"# {step.note}" + (" (runs even if an earlier step failed)" if step.always else ""))
      out.append(step.render())
    return "\n".join(out)

  def missing_programs(self) -> list[str]:
    progs = {p for s in self.steps for p in s.programs()}
    return sorted(p for p in progs if not os.path.isabs(p) and shutil.which(p) is None)

  def execute(self, echo: Callable[[str], None] = lambda s: print(s, flush=True)) -> int:
    """Runs the steps in order; after a failure only `always` steps run. Returns the first failure's code."""
    missing = self.missing_programs()
    if missing:
      raise FileNotFoundError(
          f"--target={self.target} needs {', '.join(missing)} on PATH, which this machine lacks "
          f"(nothing was run). Install it, or print the commands with --dry_run.")
    for line in self.summary:
      echo(f"# {line}")
    rc = 0
    for step in self.steps:
      if rc and not step.always:
        continue
      echo("")
      if step.note:
        echo(f"# {step.note}")
      echo(step.render())
      code = step.run()
      if code and not rc:
        echo(f"# failed with exit code {code}")
        rc = code
    return rc
