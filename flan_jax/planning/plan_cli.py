"""`flan-jax plan`: the analytic plan (`planning.plan`), and with --compile / --search the compiled
train step (`planning.compiled`) and the search over settings (`planning.search`)."""
from __future__ import annotations

import dataclasses
import sys
from typing import Sequence

from flan_jax.planning import compiled, plan, search, topology, tpu
from flan_jax.runtime import cli_args, gin_utils


def run(files, bindings, args) -> int:
  """Exit status: 0 fits (or a fitting setting was found), 1 does not fit, 2 no libtpu."""
  sl = topology.parse_compilable(args.topology)  # raises naming the valid slices
  if not tpu.have_libtpu():
    print(f"flan-jax plan: --compile and --search need libtpu (the XLA:TPU compiler, ~210 MB); "
          f"install it with: {tpu.INSTALL_HINT}")
    return 2
  # The analytic planning starts JAX's backends too, and libtpu then probes for a TPU and
  # complains on stderr unless its environment is set: set it for the whole command.
  with tpu.libtpu_environment(sl.name):
    return _run(files, bindings, args, sl)


def _run(files, bindings, args, sl) -> int:
  header = f"plan       {' '.join(files)}" + "".join(f" --gin.{b.replace(' ', '')}" for b in bindings)
  print(header, flush=True)
  if args.search:
    cands, best = search.search(files, bindings, args.topology, args.num_slices or 1, args.compile_top,
                                effort=getattr(args, 'compile_effort', 'full'),
                                say=lambda s: print(s, flush=True))
    print(search.format_search(cands, best, files))
    return 0 if best is not None else 1
  recipe = plan.recipe_from_gin(files, bindings)
  num_slices = args.num_slices or recipe.mesh_config.num_slices
  if num_slices != recipe.mesh_config.num_slices:
    recipe = dataclasses.replace(recipe, mesh_config=dataclasses.replace(recipe.mesh_config, num_slices=num_slices))
  analytic = plan.Planner(recipe).plan(sl.with_size(sl.size * num_slices), args.mfu)
  print(plan.format_plan(analytic), flush=True)
  print(f"\ncompiling  the trainer's train step for {sl.name}"
        + (f" x {num_slices} slices" if num_slices > 1 else "") + " with XLA:TPU (libtpu) ...", flush=True)
  try:
    c = compiled.compile_recipe(recipe, sl, num_slices, effort=getattr(args, 'compile_effort', 'full'))
  except compiled.CompilerOutOfMemory as e:
    print(f"DOES NOT FIT on {sl.name}: XLA:TPU refused the program after {e.seconds:.0f} s:\n{e.message}")
    print("see the analytic breakdown above for what to change (MODEL_PARALLEL, REMAT_POLICY, "
          "NUM_MICROBATCHES, a bigger slice; flan-jax plan --search tries them)")
    return 1
  print(compiled.format_compiled(c, analytic))
  return 0 if c.fits else 1


def main(argv: Sequence[str] | None = None) -> int:
  """`flan-jax plan --gin_file=F [--gin.K=V ...] [--topology=T]` (default: the recipe's TOPOLOGY macro)."""
  argv = list(sys.argv[1:] if argv is None else argv)
  files, bindings, rest = gin_utils.split_gin_args(argv)
  parser = cli_args.plan_parser()
  args = parser.parse_args(rest)
  if not files:
    parser.error("give the recipe: --gin_file=gin/recipes/... (e.g. gin/recipes/flan_palm_540b.gin)")
  recipe = plan.recipe_from_gin(files, bindings)
  name = args.topology or recipe.topology
  if not isinstance(name, str):
    parser.error(f"{files[-1]} sets no TOPOLOGY macro; give --topology=v4-512 (or h100x64, v5p-1024, ...)")
  args.topology = name
  if args.compile or args.search:
    return run(files, bindings, args)
  slice_ = topology.parse_topology(args.topology)
  planner = plan.Planner(recipe)
  fitted = planner.plan(slice_, args.mfu)
  print(f"plan       {' '.join(files)}" + "".join(f" --gin.{b.replace(' ', '')}" for b in bindings))
  print(plan.format_plan(fitted, plan.smallest_fitting(planner, slice_, args.mfu)))
  return 0 if fitted.fits else 1


if __name__ == "__main__":
  raise SystemExit(main())
