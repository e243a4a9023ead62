"""`flan-jax train` / `python -m flan_jax.train`: the gin-configurable training entry point.

    flan-jax train --gin_file=gin/recipes/quickstart.gin --gin.MODEL_DIR=/tmp/quickstart

The run logic lives in `gin/runs/finetune.gin`, which binds this function's
arguments to T5X's macro names (MODEL_DIR, TRAIN_STEPS, MIXTURE_OR_TASK_NAME,
TASK_FEATURE_LENGTHS, BATCH_SIZE, INITIAL_CHECKPOINT_PATH, USE_CACHED_TASKS).
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Mapping, Sequence

import gin
import jax

from flan_jax import (checkpoints, compile_cache, data, distributed, evaluation, flops, gin_utils, host_memory,
                      metrics, models, optim, partitioning, trainer)
from flan_jax.models import build_model, record


@gin.configurable(denylist=["stop_after_steps"])
def train(*, model_dir: str = gin.REQUIRED, mixture_or_task_name: str = gin.REQUIRED,
          task_feature_lengths: Mapping[str, int] = gin.REQUIRED, batch_size: int = gin.REQUIRED,
          train_steps: int = gin.REQUIRED, model_config: Any = gin.REQUIRED,
          optimizer: optim.OptimizerConfig = optim.OptimizerConfig(),
          mesh: partitioning.MeshConfig = partitioning.MeshConfig(),
          initial_checkpoint_path: str | None = None, initial_checkpoint_step: int | None = None,
          use_cached_tasks: bool = False,
          task_modules: Sequence[str] = ("flan_jax.tasks.embedded",), num_microbatches: int = 1,
          z_loss: float = 1e-4, label_smoothing: float = 0.0,
          loss_normalizing_factor: float | str | None = "NUM_REAL_TARGET_TOKENS",
          checkpoint_period: int = 1000, keep_checkpoints: int | None = 3, async_checkpointing: bool = True,
          log_every: int = 10, seed: int = 0, data_seed: int = 0, pack: bool = True,
          data_sharding: str = "per_process",
          peak_flops_per_device: float | None = None, eval_period: int = 0,
          eval_mixture_or_task_name: str | None = None, eval_max_examples: int = 16,
          stop_after_steps: int | None = None) -> list[dict]:
  """Fine-tunes `model_config` on a seqio task or mixture; resumes from MODEL_DIR if it has a checkpoint.

  Every `eval_period` steps (0: never) the current parameters are evaluated on the
  validation split of `eval_mixture_or_task_name` (up to `eval_max_examples` per task,
  greedy) by `flan_jax.evaluation`; results go to the console, MODEL_DIR/eval and
  TensorBoard, and a failing evaluation does not stop the run.

  Returns the logged metrics (one dict per logging step of this process).
  """
  compile_cache.enable()
  is_chief = jax.process_index() == 0
  say = (lambda *a: print(*a, flush=True)) if is_chief else (lambda *a: None)

  # Fail fast on names before anything slow: task modules, the task, the model type.
  data.import_task_modules(task_modules)
  from flan_jax.tasks import api as tasks_api  # pylint: disable=g-import-not-at-top
  tasks_api.configure_fewshot_budget(task_feature_lengths)  # few-shot prompts fit the inputs
  task = data.get_mixture_or_task(mixture_or_task_name)
  model, converter = build_model(model_config)
  data.check_vocabulary(task, model_config.vocab_size)

  device_mesh = partitioning.make_mesh(mesh)
  say(f"mesh {dict(device_mesh.shape)} over {jax.device_count()} {jax.devices()[0].platform} devices "
      f"in {jax.process_count()} process(es)")
  ckpts = checkpoints.RunCheckpoints(model_dir, max_to_keep=keep_checkpoints, async_save=async_checkpointing)
  start_step = ckpts.latest_step() or 0

  batches = data.BatchIterator(task.name, task_feature_lengths, batch_size, feature_converter=converter,
                               pack=pack, seed=data_seed, use_cached=use_cached_tasks, sharding=data_sharding)
  example = batches.global_shapes()
  tx, lr_fn = optim.make_optimizer(optimizer, train_steps)
  loss_cfg = trainer.LossConfig(z_loss, label_smoothing, loss_normalizing_factor)
  tr = trainer.Trainer(model, tx, device_mesh, example, loss=loss_cfg, num_microbatches=num_microbatches,
                       learning_rate_fn=lr_fn, dropout_seed=seed)

  if start_step:
    record.check_same_model(model_dir, model_config)
    state, data_state = ckpts.restore(start_step, tr.abstract_state)
    batches.restore(data_state)
    say(f"resumed from {ckpts.directory} at step {start_step}")
  else:
    state = tr.init_state(seed)
    if initial_checkpoint_path:
      params, ckpt_step = checkpoints.load_params_and_step(initial_checkpoint_path, tr.abstract_state.params)
      opt_step = ckpt_step if ckpt_step is not None else (initial_checkpoint_step or 0)
      state = tr.replace_params(state, params, initial_step=opt_step)  # Adafactor continues, as T5X
      say(f"initialised parameters from {initial_checkpoint_path}; Adafactor continues from step {opt_step}")
    if is_chief:
      os.makedirs(model_dir, exist_ok=True)
      with open(os.path.join(model_dir, "config.gin"), "w") as f:
        f.write(gin.operative_config_str())
  if is_chief and (not start_step or not os.path.isfile(os.path.join(model_dir, record.RECORD_FILE))):
    vocab = task.output_features["targets"].vocabulary  # the model and its vocabulary, as data
    record.write_record(model_dir, model_config, *record.vocabulary_fields(vocab), vocab_size=vocab.vocab_size,
                        note=f"flan-jax train on {task.name}")

  shapes = {k: v.shape[1] for k, v in example.items()}
  step_flops = flops.train_step_flops(model_config, batch_size, *models.family_for(model_config).flops_lengths(shapes))
  peak = peak_flops_per_device or flops.peak_flops_for_device(jax.devices()[0])
  if peak is None and jax.devices()[0].platform == "cpu":
    peak = metrics.cpu_peak_flops() / jax.local_device_count()
  logger = metrics.MetricsLogger(model_dir, train_steps, step_flops, peak and peak * jax.device_count())
  end_step = train_steps if stop_after_steps is None else min(train_steps, start_step + stop_after_steps)
  if start_step >= train_steps:
    say(f"{model_dir} is already at step {start_step} >= TRAIN_STEPS={train_steps}; nothing to do")

  evaluator = None
  if eval_period and eval_mixture_or_task_name:
    evaluator = evaluation.training_evaluator(
        model, device_mesh, eval_mixture_or_task_name, max_examples=eval_max_examples,
        input_length=task_feature_lengths["inputs"], max_decode_len=task_feature_lengths["targets"])

  step = start_step
  t_start = time.perf_counter()
  for step in range(start_step + 1, end_step + 1):
    local = next(batches)
    state, step_metrics = tr.step(state, trainer.global_batch(local, tr.batch_shardings))
    logger.add(step_metrics, data.non_padding_tokens(local) * jax.process_count())
    if step == start_step + 1:
      jax.block_until_ready(step_metrics)
      say(f"compiled and ran the first step in {time.perf_counter() - t_start:.1f}s")
      logger.log(step)
      logger.reset_clock()
    elif step % log_every == 0 or step == end_step:
      logger.log(step)
    if step % checkpoint_period == 0 or step == end_step:
      ckpts.save(step, state, batches.state())
    if evaluator is not None and (step % eval_period == 0 or step == end_step):
      evaluation.evaluate_during_training(evaluator, state.params, step, model_dir, say)
  ckpts.close()
  logger.close()
  if step > start_step:
    say(f"done: step {step}, checkpoint in {ckpts.directory}")
  return logger.history


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  host_memory.retain_freed_memory_on_cpu()
  return gin_utils.run_entry_point("train", argv, "gin/recipes/quickstart.gin", train, before_parse=distributed.initialize_from_env)

if __name__ == "__main__":
  sys.exit(main())
