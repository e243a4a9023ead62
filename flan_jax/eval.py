"""`flan-jax eval`: evaluate a checkpoint on benchmark tasks (gin-configurable, like t5x.eval).

    flan-jax eval --gin_file=gin/recipes/quickstart_eval.gin --gin.CHECKPOINT_PATH=/tmp/flan_jax_quickstart

The model comes from gin (`evaluate.model_config`) or, when unbound, from the checkpoint's
own `config.gin` (a MODEL_DIR, written by `flan-jax train`) or `model.gin` (a converted
checkpoint). `CHECKPOINT_PATH = None` evaluates the freshly initialised model (the
untrained baseline of the same architecture). Results go to OUTPUT_DIR (default
CHECKPOINT_PATH/eval): results_<step>.json, results_<step>.md, results.md (one row per
evaluated step) and TensorBoard scalars.
"""
from __future__ import annotations

import ast
import dataclasses
import os
import re
import sys
from typing import Any, Sequence

import gin
import jax

from flan_jax import checkpoints, data, decoding, evaluation, gin_utils, partitioning
from flan_jax.models import build_model, palm, t5  # noqa: F401  (registers T5Config, PaLMConfig with gin)


def _gin_statements(text: str) -> list[tuple[str, str]]:
  """(key, value text) of each binding in a gin file's text; continuation lines joined."""
  stmts: list[list[str]] = []
  for line in text.splitlines():
    if not line.strip() or line.lstrip().startswith("#"):
      continue
    if line[0] in " \t" and stmts:
      stmts[-1].append(line.strip())
    elif "=" in line:
      stmts.append([line.strip()])
  out = []
  for parts in stmts:
    key, value = " ".join(parts).split("=", 1)
    out.append((key.strip(), value.strip()))
  return out


def model_config_from_gin_text(text: str, where: str = "config.gin") -> Any:
  """Builds the T5Config / PaLMConfig that a saved gin config binds, without touching the
  global gin state (literal values and %MACROs only)."""
  from flan_jax.models import palm, t5
  stmts = _gin_statements(text)
  macros = {k: v for k, v in stmts if re.fullmatch(r"[A-Z_][A-Z0-9_]*", k)}

  def value(v: str, depth: int = 0):
    if v.startswith("%") and depth < 10:
      name = v[1:]
      if name not in macros:
        raise ValueError(f"{where}: macro %{name} is not defined")
      return value(macros[name], depth + 1)
    return ast.literal_eval(v)

  # gin's operative config scopes the bindings by the macro that held the config
  # (`MODEL_CONFIG/T5Config.emb_dim = 128`); those override unscoped ones.
  bound = dict(stmts).get("train.model_config", "%MODEL_CONFIG")
  scope = bound[1:] if bound.startswith("%") else ""
  for cls in (t5.T5Config, palm.PaLMConfig):
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for prefix in (f"{cls.__name__}.", f"{scope}/{cls.__name__}."):
      kwargs.update({k[len(prefix):]: value(v) for k, v in stmts
                     if k.startswith(prefix) and k[len(prefix):] in fields})
    if kwargs:
      return cls(**kwargs)
  raise ValueError(f"{where} binds no T5Config or PaLMConfig; bind evaluate.model_config in gin "
                   "(e.g. include 'models/t5_1_1/tiny.gin' and set evaluate.model_config = %MODEL_CONFIG)")


def model_config_from_checkpoint(path: str) -> Any:
  for name in ("config.gin", "model.gin"):
    candidate = os.path.join(path, name)
    if os.path.isfile(candidate):
      with open(candidate) as f:
        return model_config_from_gin_text(f.read(), candidate)
  raise FileNotFoundError(f"{path} has neither config.gin nor model.gin; bind evaluate.model_config in gin")


def checkpoint_step(path: str) -> int | None:
  """The step a checkpoint path stands for: a MODEL_DIR's latest, or a step directory's."""
  run = os.path.join(path, "checkpoints")
  if os.path.isdir(run):
    steps = [int(d) for d in os.listdir(run) if d.isdigit()]
    return max(steps) if steps else None
  base = os.path.basename(os.path.normpath(path))
  return int(base) if base.isdigit() else None


@gin.configurable
def evaluate(*, checkpoint_path: str | None = gin.REQUIRED, mixture_or_task_names: Sequence[str] = gin.REQUIRED,
             model_config: Any = None, split: str = "validation",
             decode_config: decoding.DecodeConfig = decoding.DecodeConfig(max_decode_len=64),
             batch_size: int = 16, max_examples: int | None = 64, input_length: int = 512,
             mode: str = "generate", self_consistency: int = 0, sc_temperature: float = 0.7,
             score_targets: bool = True, output_dir: str | None = None, name: str | None = None,
             task_modules: Sequence[str] = ("flan_jax.tasks.embedded",),
             bigbench_tasks: Sequence[str] = (), mesh: partitioning.MeshConfig = partitioning.MeshConfig(),
             seed: int = 0) -> dict:
  """Evaluates a checkpoint (or, with checkpoint_path=None, the initialised model) on tasks.

  mixture_or_task_names: seqio tasks or mixtures (mixtures expand to their tasks).
  bigbench_tasks: BIG-bench JSON tasks to register from the `bigbench` package as
    `bbh_bigbench_<name>` and evaluate too (skipped with a note when it is not installed).
  Returns the results dict of `evaluation.summarize`.
  """
  data.import_task_modules(task_modules)
  names = list(mixture_or_task_names)
  if bigbench_tasks:
    registered = evaluation.register_bigbench_tasks(bigbench_tasks)
    if not registered:
      print("bigbench package not installed (pip install --no-deps bigbench==1.0.0); "
            "skipping BIG-bench tasks", flush=True)
    names += registered
  task_names = evaluation.expand_tasks(names)
  if model_config is None:
    if checkpoint_path is None:
      raise ValueError("evaluate: with checkpoint_path=None (untrained model) bind evaluate.model_config")
    model_config = model_config_from_checkpoint(checkpoint_path)
  model, _ = build_model(model_config)
  decoder = decoding.Decoder(model, partitioning.make_mesh(mesh))
  if checkpoint_path is None:
    params = jax.jit(lambda: decoder.model.init(jax.random.key(seed), *_init_args(model_config)))()["params"]
    step, label = None, name or "untrained"
  else:
    params = checkpoints.load_params(checkpoint_path)
    step, label = checkpoint_step(checkpoint_path), name or os.path.basename(os.path.normpath(checkpoint_path))
  params = decoder.put_params(params)
  config = evaluation.EvalConfig(max_examples=max_examples, batch_size=batch_size, input_length=input_length,
                                 mode=mode, self_consistency=self_consistency, sc_temperature=sc_temperature,
                                 score_targets=score_targets, seed=seed)
  evaluator = evaluation.Evaluator(decoder, task_names, split=split, decode_config=decode_config, config=config)
  results = evaluator.run(params, step=step, name=label)
  if output_dir is None:
    if checkpoint_path is None:
      raise ValueError("evaluate: set output_dir (OUTPUT_DIR) when evaluating an untrained model")
    output_dir = os.path.join(checkpoint_path, "eval")
  if jax.process_index() == 0:
    paths = evaluation.write_results(results, output_dir)
    print(evaluation.markdown_table([results]), flush=True)
    print(f"wrote {paths['json']} and {paths['table']}", flush=True)
  return results


def _init_args(model_config):
  import jax.numpy as jnp
  from flan_jax.models import t5
  if isinstance(model_config, t5.T5Config):
    return jnp.ones((1, 8), jnp.int32), jnp.ones((1, 8), jnp.int32)
  return (jnp.ones((1, 8), jnp.int32),)


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  return gin_utils.run_entry_point("eval", argv, "gin/recipes/quickstart_eval.gin", evaluate)

if __name__ == "__main__":
  sys.exit(main())
