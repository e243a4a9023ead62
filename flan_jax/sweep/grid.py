"""The grid of a scaling study (model size x number of tasks x CoT) and its runs.

A grid file binds `SweepGrid` (model sizes -> recipe + overrides, task counts, with/without
CoT, the mixture name pattern, the evaluation recipe); it is the single source of the
study. Each cell becomes a `Run`: a name, a recipe, gin overrides, MODEL_DIR = ROOT/NAME
and the run's training FLOPs (`flops.train_step_flops` x TRAIN_STEPS).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Mapping, Sequence

import gin

from flan_jax.runtime import gin_utils


@gin.configurable
@dataclasses.dataclass(frozen=True)
class SweepGrid:
  """One scaling study. `mixture` is formatted with n (task count) and cot ('' with CoT,
  '_no_cot' without); `skip` names cells that do not exist, as 'N/no_cot' or 'N/cot'."""
  name: str = "sweep"
  models: Mapping[str, str] = dataclasses.field(default_factory=dict)   # size label -> recipe gin file
  model_overrides: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)  # label -> ['K = V']
  task_counts: Sequence[int] = ()
  cot: Sequence[bool] = (True, False)
  mixture: str = "flan_scaling_{n}_tasks{cot}"
  skip: Sequence[str] = ()
  overrides: Sequence[str] = ()            # 'K = V' bindings of every run
  eval_recipe: str = "gin/recipes/quickstart_eval.gin"
  eval_overrides: Sequence[str] = ()       # 'K = V' bindings of every evaluation
  root: str = "/tmp/flan_jax_sweep"


@dataclasses.dataclass(frozen=True)
class Run:
  name: str
  model: str
  num_tasks: int
  cot: bool
  recipe: str
  bindings: tuple[str, ...]   # 'K = V', after the recipe
  model_dir: str
  params: int
  train_steps: int
  flops: float                # training FLOPs of the whole run

  def gin_args(self) -> list[str]:
    return [f"--gin_file={self.recipe}"] + [flag(b) for b in self.bindings]

  def cell(self) -> str:
    return f"{self.num_tasks}/{'cot' if self.cot else 'no_cot'}"


def flag(binding: str) -> str:
  key, value = binding.split("=", 1)
  return f"--gin.{key.strip()}={value.strip()}"


def slug(text: str) -> str:
  return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def load_grid(path: str, bindings: Sequence[str] = ()) -> SweepGrid:
  """Parses a sweep gin file (+ `SweepGrid.*` bindings) into a SweepGrid; leaves gin cleared."""
  with gin_utils.parsed([path], bindings, skip_unknown=False):
    grid = SweepGrid()
  if not grid.models or not grid.task_counts or not grid.cot:
    raise ValueError(f"{path}: SweepGrid.models, SweepGrid.task_counts and SweepGrid.cot must be non-empty")
  unknown = set(grid.model_overrides) - set(grid.models)
  if unknown:
    raise ValueError(f"{path}: SweepGrid.model_overrides names sizes {sorted(unknown)} that are not in "
                     f"SweepGrid.models ({', '.join(grid.models)})")
  return grid


def expand(grid: SweepGrid, root: str | None = None, extra: Sequence[str] = ()) -> list[Run]:
  """Every (size, task count, CoT) cell of the grid as a Run, with its FLOPs; leaves gin cleared."""
  from flan_jax.planning import plan  # pylint: disable=g-import-not-at-top  (JAX: not for --help)
  from flan_jax.training import flops
  root = root or grid.root
  runs = []
  for model, recipe in grid.models.items():
    for n in grid.task_counts:
      for cot in grid.cot:
        if f"{n}/{'cot' if cot else 'no_cot'}" in grid.skip:
          continue
        name = f"{slug(model)}-{n}-{'cot' if cot else 'nocot'}"
        mixture = grid.mixture.format(n=n, cot="" if cot else "_no_cot")
        model_dir = root.rstrip("/") + "/" + name
        bindings = (tuple(grid.overrides) + tuple(grid.model_overrides.get(model, ())) + tuple(extra)
                    + (f"MIXTURE_OR_TASK_NAME = {mixture!r}", f"MODEL_DIR = {model_dir!r}"))
        recipe_numbers = plan.recipe_from_gin([recipe], bindings)
        steps = int(recipe_numbers.train_steps or 0)
        step_flops = flops.train_step_flops(recipe_numbers.model_config, recipe_numbers.batch_size,
                                            recipe_numbers.input_length, recipe_numbers.target_length)
        runs.append(Run(name, model, n, cot, recipe, bindings, model_dir,
                        flops.param_count(recipe_numbers.model_config), steps, step_flops * steps))
  return runs


def format_runs(runs: Sequence[Run]) -> str:
  lines = [f"{'run':<28} {'recipe':<34} {'params':>9} {'steps':>7} {'FLOPs':>9}  mixture"]
  for r in runs:
    mixture = next(b.split("=", 1)[1].strip().strip("'") for b in r.bindings if b.startswith("MIXTURE_OR_TASK_NAME"))
    lines.append(f"{r.name:<28} {r.recipe:<34} {human(r.params):>9} {r.train_steps:>7} "
                 f"{r.flops:>9.2e}  {mixture}")
  total = sum(r.flops for r in runs)
  lines.append(f"{len(runs)} runs, {total:.2e} training FLOPs in all")
  return "\n".join(lines)


def human(n: float) -> str:
  for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
    if n >= scale:
      return f"{n / scale:.3g}{unit}"
  return str(int(n))
