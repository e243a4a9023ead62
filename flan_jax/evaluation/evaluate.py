"""`flan-jax eval`: evaluate a checkpoint on benchmark tasks (gin-configurable, like t5x.eval).

The entry point only: the evaluator is `flan_jax.evaluation.evaluator`, answers and metrics
`flan_jax.tasks.metrics`, the reports `flan_jax.evaluation.eval_report`.

    flan-jax eval --gin_file=gin/recipes/quickstart_eval.gin --gin.CHECKPOINT_PATH=/tmp/flan_jax_quickstart

The model comes from gin (`evaluate.model_config`) or, when unbound, from the checkpoint's
`model.json` (written by `flan-jax train` and `convert from-hf`; flan_jax.models.record).
Every prompt is tokenized, and every output read, with the checkpoint's own vocabulary (its
record's; VOCABULARY_FILE where it records none), whatever vocabulary a task was registered
with; few-shot prompts too long for EVAL_INPUT_LENGTH lose whole exemplars (`evaluator.fit_prompt`).
`CHECKPOINT_PATH = None` evaluates the freshly initialised model (the untrained baseline of
the same architecture). Results go to OUTPUT_DIR (default
CHECKPOINT_PATH/eval): results_<step>.json, results_<step>.md, results.md (one row per
evaluated step) and TensorBoard scalars. A task metric that fails is recorded in the
results (`metric_failures`), which are written, and then the command fails naming it.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Sequence

import gin
import jax

from flan_jax.checkpointing import checkpoints
from flan_jax.inference import decoding, loading
from flan_jax.runtime import distributed, gin_utils
from flan_jax.evaluation import eval_report
from flan_jax import models
from flan_jax.core import partitioning
from flan_jax.evaluation import evaluator as evaluator_lib
from flan_jax.models import record
from flan_jax.tasks import lookup


@gin.configurable
def evaluate(*, checkpoint_path: str | None = gin.REQUIRED, mixture_or_task_names: Sequence[str] = gin.REQUIRED,
             model_config: Any = None, split: str = "validation",
             decode_config: decoding.DecodeConfig = decoding.DecodeConfig(max_decode_len=64),
             batch_size: int = 16, max_examples: int | None = 64, input_length: int = 512,
             mode: str = "generate", scoring: str = "reference", self_consistency: int = 0,
             sc_temperature: float = 0.7, sc_top_k: int = 40, drop_exemplars: str = "leading",
             vocabulary_file: str | None = None,
             score_targets: bool = True, output_dir: str | None = None, name: str | None = None,
             task_modules: Sequence[str] = ("flan_jax.tasks.embedded",),
             bigbench_tasks: Sequence[str] = (), mesh: partitioning.MeshConfig = partitioning.MeshConfig(),
             seed: int = 0, data_dir: str | None = None) -> dict:
  """Evaluates a checkpoint (or, with checkpoint_path=None, the initialised model) on tasks.

  mixture_or_task_names: seqio tasks or mixtures (mixtures expand to their tasks).
  bigbench_tasks: BIG-bench JSON tasks to register from the `bigbench` package as
    `bbh_bigbench_<name>` and evaluate too (skipped with a note when it is not installed).
  vocabulary_file: the model's SentencePiece file where the checkpoint records none (a T5X
    checkpoint); every prompt is tokenized with the checkpoint's vocabulary, whatever
    vocabulary a task was registered with.
  scoring, drop_exemplars, self_consistency, sc_temperature, sc_top_k: `evaluator.EvalConfig`.
  data_dir: prepared benchmark and Flan data (DATA_DIR; None: $FLAN_JAX_DATA_DIR or the default).
  Returns the results dict of `evaluator.summarize`; raises `evaluator.MetricError` (after
  writing the results) when a task's own metric failed.
  """
  lookup.import_task_modules(task_modules, data_dir=data_dir)
  names = list(mixture_or_task_names)
  if bigbench_tasks:
    from flan_jax.tasks import eval_suites  # registers the paper's suites too (reads no data)
    registered = eval_suites.register_bigbench_tasks(bigbench_tasks, data_dir=data_dir)
    if not registered:
      print("no BIG-bench task files (flan-jax data prepare bigbench, or an installed bigbench "
            "package); skipping BIG-bench tasks", flush=True)
    names += registered
  task_names = lookup.expand_tasks(names)
  if checkpoint_path is None:
    if model_config is None:
      raise ValueError("evaluate: with checkpoint_path=None (untrained model) bind evaluate.model_config")
    decoder = decoding.SequenceDecoder(models.build_model(model_config)[0], partitioning.make_mesh(mesh))
    inputs = models.family_for(model_config).init_inputs(model_config)
    params = jax.jit(lambda: decoder.model.init(jax.random.key(seed), **inputs))()["params"]
    step, label = None, name or "untrained"
    vocabulary = loading.choose_vocabulary(record.ModelRecord(models.family_for(model_config), model_config, None, 0, "gin"),
                                         vocabulary_file) if vocabulary_file else None
  else:
    if output_dir is None and checkpoints.is_t5x(checkpoint_path):  # refused before anything is read
      raise ValueError(f"evaluate: set output_dir (OUTPUT_DIR): {checkpoint_path} is a T5X checkpoint, and results "
                       "are not written into it")
    decoder, params, rec = loading.load_decoder(checkpoint_path, model_config, mesh)
    vocabulary = loading.choose_vocabulary(rec, vocabulary_file or _tasks_vocabulary(rec, task_names))
    step = checkpoints.step_of(checkpoint_path)
    step = rec.step if step is None else step  # a T5X or from-t5x checkpoint records its own
    label = name or os.path.basename(os.path.normpath(checkpoint_path))
  params = decoder.put_params(params)
  config = evaluator_lib.EvalConfig(max_examples=max_examples, batch_size=batch_size, input_length=input_length,
                                    mode=mode, scoring=scoring, self_consistency=self_consistency,
                                    sc_temperature=sc_temperature, sc_top_k=sc_top_k, drop_exemplars=drop_exemplars,
                                    score_targets=score_targets, seed=seed)
  evaluator = evaluator_lib.Evaluator(decoder, task_names, split=split, decode_config=decode_config, config=config,
                                      vocabulary=vocabulary)
  results = evaluator.run(params, step=step, name=label)
  if output_dir is None:
    if checkpoint_path is None:
      raise ValueError("evaluate: set output_dir (OUTPUT_DIR) when evaluating an untrained model")
    output_dir = os.path.join(checkpoint_path, "eval")
  if jax.process_index() == 0:
    paths = eval_report.write_results(results, output_dir)
    print(eval_report.markdown_table([results]), flush=True)
    print(f"wrote {paths['json']} and {paths['table']}", flush=True)
  evaluator_lib.raise_metric_failures(results, output_dir)
  return results


def _tasks_vocabulary(rec, task_names: Sequence[str]):
  """None where the checkpoint records its vocabulary (prompts are then tokenized with it);
  where it records none (a T5X checkpoint), the vocabulary the tasks share, if they share
  one (else VOCABULARY_FILE must name it)."""
  if rec.vocabulary() is not None or rec.source.endswith(".gin"):
    return None
  shared = {}
  for task_name in task_names:
    vocab = loading.seqio_vocabulary(task_name)
    shared.setdefault(getattr(vocab, "sentencepiece_model_file", repr(vocab)), vocab)
  if len(shared) != 1:
    raise ValueError(f"{rec.source} records no vocabulary and the tasks use {len(shared)}; set VOCABULARY_FILE "
                     "(evaluate.vocabulary_file) to the model's SentencePiece file")
  return next(iter(shared.values()))


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  return gin_utils.run_entry_point("eval", argv, "gin/recipes/quickstart_eval.gin", evaluate,
                                   before_parse=distributed.initialize_from_env)

if __name__ == "__main__":
  sys.exit(main())
