"""The `flan-jax` command: one subcommand per entry point.

Each subcommand is a module with `main(argv) -> int`; it is imported only when
used, so `flan-jax --help` stays fast.
"""
from __future__ import annotations

import importlib
import os
import sys

SUBCOMMANDS = {
    "train": ("flan_jax.training.train", "fine-tune a model from gin files (--gin_file=F --gin.KEY=VALUE)"),
    "eval": ("flan_jax.evaluation.evaluate", "evaluate a checkpoint on benchmark tasks (--gin_file=F --gin.KEY=VALUE)"),
    "infer": ("flan_jax.inference.infer", "decode a task or mixture to JSONL (--gin_file=gin/runs/infer.gin --gin.KEY=VALUE)"),
    "generate": ("flan_jax.inference.generate", "complete prompts: --checkpoint DIR \"PROMPT\" ... | --interactive"),
    "convert": ("flan_jax.checkpointing.convert_cli", "convert checkpoints: from-hf SRC DST | to-hf SRC DST | from-t5x SRC DST"),
    "plan": ("flan_jax.planning.plan_cli", "per-chip memory and step time of a recipe on a topology (--gin_file=RECIPE)"),
    "flops": ("flan_jax.training.flops", "FLOPs accounting; --paper prints the paper's compute table"),
    "tasks": ("flan_jax.tasks.tasks_cli",
              "the Flan 2022 catalogue: count | list [--collection C] [--mixtures] [--all] | show NAME [--format F]"),
    "data": ("flan_jax.tasks.data_cli", "fetch and cache data: prepare muffin|t0sf|niv2|cot|mmlu|bbh|tydiqa|mgsm|all; "
             "cache MIXTURE (render+tokenize once); stats"),
    "launch": ("flan_jax.launch.launch_cli", "run a recipe on TPU VMs, xpk, SLURM, SkyPilot or local processes (--dry_run)"),
    "sweep": ("flan_jax.sweep.sweep_cli", "scaling sweeps: --grid=G --list | --target=T [--dry_run] | run | status | report"),
}

# Where `COMMAND --help` finds its parser without importing the command's module (which
# may import JAX or TensorFlow): a light module's parser function.
HELP_PARSERS = {
    "plan": ("flan_jax.runtime.cli_args", "plan_parser"),
    "flops": ("flan_jax.runtime.cli_args", "flops_parser"),
    "generate": ("flan_jax.runtime.cli_args", "generate_parser"),
    "convert": ("flan_jax.runtime.cli_args", "convert_parser"),
}


def _usage() -> str:
  width = max(map(len, SUBCOMMANDS))
  lines = [f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
  return ("usage: flan-jax COMMAND [ARGS...]\n\ncommands:\n" + "\n".join(lines)
          + "\n\n`flan-jax COMMAND --help` describes each command's flags.")


def _help(command: str, rest: list[str]) -> int | None:
  """Prints COMMAND's help without importing its module; None when the module's own
  parser (a light module) should answer."""
  if command in ("train", "eval", "infer"):
    from flan_jax.runtime import cli_args, gin_utils  # pylint: disable=g-import-not-at-top
    files = gin_utils.split_gin_args([a for a in rest if a not in ("-h", "--help")])[0]
    print(cli_args.gin_help(command, files, str(gin_utils.gin_root())))
    return 0
  if command in HELP_PARSERS:
    module, function = HELP_PARSERS[command]
    parser = getattr(importlib.import_module(module), function)()
    words = [a for a in rest if not a.startswith("-")]
    if command == "convert" and words and words[0] in ("from-hf", "to-hf", "from-t5x"):
      try:
        parser.parse_args([words[0], "--help"])
      except SystemExit as e:
        return int(e.code or 0)
    parser.print_help()
    return 0
  return None


def main(argv: list[str] | None = None) -> int:
  importlib.import_module("flan_jax.runtime.console").quiet()  # before TensorFlow loads: our lines only
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ("-h", "--help", "help"):
    print(_usage())
    return 0
  command, rest = argv[0], argv[1:]
  if command not in SUBCOMMANDS:
    print(f"flan-jax: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
    return 2
  if "-h" in rest or "--help" in rest or (command == "flops" and not rest):  # bare `flops`: its help
    code = _help(command, rest)
    if code is not None:
      return code
  module = importlib.import_module(SUBCOMMANDS[command][0])
  try:
    return int(module.main(rest) or 0)
  except (ValueError, FileNotFoundError) as e:
    # Configuration mistakes (gin bindings, task names, paths) read better without a
    # traceback; FLAN_JAX_DEBUG=1 shows it.
    if os.environ.get("FLAN_JAX_DEBUG"):
      raise
    print(f"flan-jax {command}: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
