"""The layer contract (.importlinter) holds, and would catch a cycle; modules import the
project's own modules at their top, except the few deferred imports listed here."""
from __future__ import annotations

import ast
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("importlinter")

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Function-level imports of the project's own modules, all of them, each with why it waits:
# (module, function) -> reason. A new one must be added here (or moved to the top).
DEFERRED_IMPORTS = {
    ("flan_jax.cli", "_help"): "--help: argument parsers only",
    ("flan_jax.inference.generate", "main"): "--help: argument parsers before JAX",
    ("flan_jax.training.flops", "main"): "--help: argument parsers before JAX",
    ("flan_jax.runtime.gin_utils", "set_up_process"): "JAX's settings only once gin is parsed",
    ("flan_jax.evaluation.evaluate", "evaluate"): "the paper's suites register only when asked for",
    ("flan_jax.launch.launch_cli", "read_recipe"): "JAX: not for launch --help",
    ("flan_jax.launch.launch_cli", "_planner"): "JAX: not for launch --help",
    ("flan_jax.launch.launch_cli", "check_fits"): "JAX: not for launch --help",
    ("flan_jax.launch.launch_cli", "make_launch"): "JAX: not for launch --help",
    ("flan_jax.sweep.grid", "expand"): "JAX: not for sweep --help",
    ("flan_jax.sweep.runner", "run_one"): "each run's train and eval in the child process only",
    ("flan_jax.sweep.submit", "gpu_topologies_hint"): "JAX: not for sweep status",
    ("flan_jax.sweep.sweep_cli", "main"): "launch's modules only when submitting",
    ("flan_jax.tasks.cache", "main"): "Apache Beam (the beam extra) only for --engine=beam",
    ("flan_jax.tasks.prepare", "convert_tfds_task"): "seqio/TensorFlow: not for data --help",
    ("flan_jax.tasks.prepare", "_mgsm"): "seqio/TensorFlow: not for data --help",
    ("flan_jax.tasks.data_cli", "main"): "seqio/TensorFlow and Beam: not for data --help",
    ("flan_jax.tasks.stats", "run"): "the Flan mixtures register only when asked for",
    ("flan_jax.tasks.tasks_cli", "list_names"): "seqio/TensorFlow: not for tasks --help",
    ("flan_jax.tasks.tasks_cli", "resolve"): "seqio/TensorFlow: not for tasks --help",
    ("flan_jax.tasks.tasks_cli", "show"): "seqio/TensorFlow: not for tasks --help",
    ("flan_jax.training.data", "open_pipeline"): "seqio/TensorFlow: not before a resumed run's first steps",
    ("flan_jax.training.data", "__init__"): "seqio/TensorFlow: not before a resumed run's first steps",
}


def _stage(dest: pathlib.Path) -> pathlib.Path:
  """flan_jax as installed (tasks/ and launch/ inside it), python files only, in `dest`."""
  pkg = dest / "flan_jax"
  ignore = shutil.ignore_patterns("*.pyc", "__pycache__", "data", "fixtures")
  shutil.copytree(ROOT / "flan_jax", pkg, ignore=ignore)
  shutil.copytree(ROOT / "tasks", pkg / "tasks", ignore=ignore)
  shutil.copytree(ROOT / "launch", pkg / "launch", ignore=ignore)
  shutil.copy(ROOT / ".importlinter", dest / ".importlinter")
  return pkg


def _lint(tree: pathlib.Path) -> subprocess.CompletedProcess:
  env = dict(os.environ, PYTHONPATH=str(tree))
  code = ("import sys; from importlinter.cli import lint_imports; "
          "sys.exit(lint_imports(config_filename='.importlinter', no_cache=True))")
  return subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True,
                        timeout=300)


def _modules(pkg: pathlib.Path) -> int:
  return sum(1 for _ in pkg.rglob("*.py"))


def test_the_layer_contract_holds_and_fails_on_an_injected_cycle(tmp_path):
  pkg = _stage(tmp_path)
  ok = _lint(tmp_path)
  assert ok.returncode == 0, ok.stdout + ok.stderr
  assert "Contracts: 1 kept, 0 broken" in ok.stdout
  # Every module is in the graph (the staged tree mirrors the installed package).
  assert f"Analyzed {_modules(pkg)} files" in ok.stdout, ok.stdout
  # A model module that imports the trainer closes a cycle (training imports models).
  layers = pkg / "models" / "layers.py"
  layers.write_text(layers.read_text() + "\nfrom flan_jax.training import trainer  # noqa\n")
  broken = _lint(tmp_path)
  assert broken.returncode != 0
  assert "flan_jax.models.layers -> flan_jax.training.trainer" in broken.stdout, broken.stdout


def _function_level_imports() -> dict[tuple[str, str], list[str]]:
  found: dict[tuple[str, str], list[str]] = {}
  for top, prefix in ((ROOT / "flan_jax", "flan_jax"), (ROOT / "tasks", "flan_jax.tasks"),
                      (ROOT / "launch", "flan_jax.launch")):
    for path in sorted(top.rglob("*.py")):
      rel = path.relative_to(top).with_suffix("")
      parts = [p for p in rel.parts if p != "__init__"]
      module = ".".join([prefix, *parts])
      tree = ast.parse(path.read_text())
      for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
          continue
        for node in ast.walk(fn):
          if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("flan_jax")):
            found.setdefault((module, fn.name), []).append(node.module or ".")
          elif isinstance(node, ast.Import) and any(a.name.startswith("flan_jax") for a in node.names):
            found.setdefault((module, fn.name), []).append(node.names[0].name)
  return found


def test_deferred_imports_of_project_modules_are_the_listed_ones():
  found = _function_level_imports()
  unlisted = sorted(set(found) - set(DEFERRED_IMPORTS))
  stale = sorted(set(DEFERRED_IMPORTS) - set(found))
  assert not unlisted, f"function-level imports not in DEFERRED_IMPORTS (import at the top, or list why): {unlisted}"
  assert not stale, f"DEFERRED_IMPORTS entries with no such import any more: {stale}"
