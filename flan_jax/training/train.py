"""`flan-jax train` / `python -m flan_jax.training.train`: the gin-configurable training entry point.

    flan-jax train --gin_file=gin/recipes/quickstart.gin --gin.MODEL_DIR=/tmp/quickstart

The run logic lives in `gin/runs/finetune.gin`, which binds this function's
arguments to T5X's macro names (MODEL_DIR, TRAIN_STEPS, MIXTURE_OR_TASK_NAME,
TASK_FEATURE_LENGTHS, BATCH_SIZE, INITIAL_CHECKPOINT_PATH, USE_CACHED_TASKS).
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any, Sequence

import gin
import jax

from flan_jax.checkpointing import checkpoints
from flan_jax.training import config as config_lib, data, progress, trainer
from flan_jax.runtime import distributed, gin_utils, run_guard
from flan_jax.training import flops
from flan_jax import models
from flan_jax.core import optim, partitioning
from flan_jax.evaluation import evaluator as evaluator_lib
from flan_jax.models import build_model, record


def train(config: config_lib.RunConfig, *, stop_after_steps: int | None = None) -> list[dict]:
  """Fine-tunes `config.model` on a seqio task or mixture; resumes from MODEL_DIR if it has a checkpoint.

  Every `config.evaluation.period` steps (0: never) the current parameters are evaluated on the
  validation split of its mixture (up to `max_examples` per task, greedy) by
  `flan_jax.evaluation.evaluator`; results go to the console, MODEL_DIR/eval and TensorBoard, and
  a failing evaluation does not stop the run.

  A run survives (exit codes in `flan_jax.runtime.run_guard`): SIGTERM/SIGINT save the current
  step and exit 75; a non-finite loss, gradient norm or state stops the run before
  anything non-finite is saved (`on_nonfinite='stop'`, exit 65) or skips that step's
  update (`'skip'`, counted in the `nonfinite` metric); a second trainer on the same
  MODEL_DIR is refused (exit 73); a failed save stops the run at the next step (exit 74).
  An unreadable newest checkpoint is an error unless `fallback_to_previous_checkpoint`.

  What the run is (its data stream: task or mixture, lengths and with them the few-shot
  budget, batch size, data seed, packing, and the model) is recorded in MODEL_DIR/run.json;
  a resume that changes any of it stops before anything is compiled, naming each change,
  unless `allow_changed_run` (then the new settings are recorded and the change printed).
  TRAIN_STEPS, logging, checkpoint and evaluation periods may change on resume. The whole
  config is written to MODEL_DIR/run_config.json at every start.

  Batches are read up to `input_lookahead` steps ahead in a background thread; those read
  ahead at a checkpoint are kept in MODEL_DIR (`data.save_lookahead`), and a resumed run
  trains on them while its input pipeline is built in the background, so its first step does
  not wait for TensorFlow, seqio and the pipeline's first batch. 0 turns both off.

  Returns the logged metrics (one dict per logging step of this process).
  """
  is_chief = jax.process_index() == 0
  say = (lambda *a: print(*a, flush=True)) if is_chief else (lambda *a: None)
  data_cfg, ckpt_cfg, model_dir = config.data, config.checkpoint, config.checkpoint.model_dir

  # Settings first: nothing is written and nothing slow runs before they are known good.
  run_guard.check_positive(TRAIN_STEPS=config.train_steps, CHECKPOINT_PERIOD=ckpt_cfg.period,
                           BATCH_SIZE=data_cfg.batch_size, NUM_MICROBATCHES=config.num_microbatches,
                           **{"train.log_every": config.log_every})
  if data_cfg.batch_size % config.num_microbatches:
    raise ValueError(f"BATCH_SIZE={data_cfg.batch_size} is not divisible by NUM_MICROBATCHES="
                     f"{config.num_microbatches}; choose a NUM_MICROBATCHES that divides BATCH_SIZE")
  if config.on_nonfinite not in ("stop", "skip"):
    raise ValueError(f"train.on_nonfinite={config.on_nonfinite!r}: use 'stop' or 'skip'")
  run_guard.check_model_dir(model_dir)
  resuming = checkpoints.has_run_checkpoints(model_dir)
  if ckpt_cfg.initial_checkpoint_path and not resuming:
    checkpoints.check_params_path(ckpt_cfg.initial_checkpoint_path)

  with run_guard.StopSignals() as signals:
    lock = run_guard.acquire_writer_lock(model_dir, say)
    try:
      identity = run_guard.run_identity(
          MIXTURE_OR_TASK_NAME=data_cfg.mixture_or_task_name,
          TASK_FEATURE_LENGTHS=dict(data_cfg.task_feature_lengths), BATCH_SIZE=data_cfg.batch_size,
          **{"train.data_seed": data_cfg.seed, "train.pack": data_cfg.pack,
             "train.data_sharding": data_cfg.sharding, "model": config.model.to_dict()})
      if resuming:
        run_guard.check_same_run(model_dir, identity, config.allow_changed_run, say)
      model, converter = build_model(config.model)
      stream = dict(task_modules=list(data_cfg.task_modules), mixture_or_task_name=data_cfg.mixture_or_task_name,
                    task_feature_lengths=dict(data_cfg.task_feature_lengths), batch_size=data_cfg.batch_size,
                    feature_converter=converter, pack=data_cfg.pack, seed=data_cfg.seed,
                    use_cached=data_cfg.use_cached_tasks, sharding=data_cfg.sharding,
                    process_count=jax.process_count())
      kept = None
      if (resuming and data_cfg.input_lookahead and not (config.evaluation.period and
                                                         config.evaluation.mixture_or_task_name)
          and os.path.isfile(os.path.join(model_dir, record.RECORD_FILE))):
        kept = data.load_lookahead(model_dir, stream)
      # The input: task modules, the task, its vocabulary against the model's (data.open_pipeline).
      args = (data_cfg.task_modules, data_cfg.mixture_or_task_name, data_cfg.task_feature_lengths,
              data_cfg.batch_size)
      kw = dict(vocab_size=config.model.vocab_size, seqio_cache_dirs=data_cfg.seqio_cache_dirs,
                data_dir=data_cfg.data_dir,
                feature_converter=converter, pack=data_cfg.pack, seed=data_cfg.seed,
                use_cached=data_cfg.use_cached_tasks, sharding=data_cfg.sharding)
      if kept is not None:  # checked when this stream was first built; it is rebuilt in the background
        task, batches = None, None
        pipeline = data.pipeline_built_later(*args, **kw)
      else:  # fail fast on names before anything slow
        task, batches = data.open_pipeline(*args, **kw)
        pipeline = data.pipeline_from(batches)
      started = _Started(identity=identity, task=task, model=model, signals=signals, stream=stream, kept=kept,
                         batches=batches, pipeline=pipeline, is_chief=is_chief, say=say)
      return _run(config, started, stop_after_steps)
    finally:
      if lock is not None:
        lock.release()


@dataclasses.dataclass
class _Started:
  """What `train` has set up before the run proper: the run's identity, task and model, the
  stop signals, and its input (kept read-ahead batches, the pipeline)."""
  identity: dict
  task: Any
  model: Any
  signals: run_guard.StopSignals
  stream: dict
  kept: Any
  batches: Any
  pipeline: Any
  is_chief: bool
  say: Any


def _run(config: config_lib.RunConfig, started: _Started, stop_after_steps: int | None) -> list[dict]:
  data_cfg, ckpt_cfg, model_dir = config.data, config.checkpoint, config.checkpoint.model_dir
  say, is_chief, kept, batches, task = started.say, started.is_chief, started.kept, started.batches, started.task
  model_config, train_steps, batch_size = config.model, config.train_steps, data_cfg.batch_size
  task_feature_lengths, stream, signals = data_cfg.task_feature_lengths, started.stream, started.signals
  device_mesh = partitioning.make_mesh(config.partitioning)
  say(f"mesh {dict(device_mesh.shape)} over {jax.device_count()} {jax.devices()[0].platform} devices "
      f"in {jax.process_count()} process(es)")
  ckpts = checkpoints.RunCheckpoints(model_dir, max_to_keep=ckpt_cfg.keep, async_save=ckpt_cfg.async_save)

  example = kept.global_shapes(batch_size) if kept is not None else batches.global_shapes()
  tx, lr_fn = optim.make_optimizer(config.optimizer, train_steps)
  tr = trainer.Trainer(started.model, tx, device_mesh, example, loss=config.loss,
                       num_microbatches=config.num_microbatches, learning_rate_fn=lr_fn, dropout_seed=config.seed,
                       skip_nonfinite_steps=config.on_nonfinite == "skip")

  if ckpts.latest_step() is not None:  # a MODEL_DIR of another model is named before any restore
    record.check_same_model(model_dir, model_config)
  restored = ckpts.restore_latest(tr.abstract_state, fallback=ckpt_cfg.fallback_to_previous, say=say)
  if restored:
    start_step, state, data_state = restored
    position = data_state.get("batches_taken") if isinstance(data_state, dict) else None
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
      where = os.path.join(ckpts.step_path(start_step), "data", "metadata")
      raise checkpoints.CheckpointError(
          f"{where}: 'batches_taken' is {position!r}, not the number of batches the run had read (an integer >= "
          f"0); the input position of step {start_step} is lost: restore that file, or move the step away to resume "
          "from an earlier one")
    say(f"resumed from {ckpts.directory} at step {start_step}")
  else:
    start_step, position = 0, 0
    state = tr.init_state(config.seed)
    initial_checkpoint_path, initial_checkpoint_step = ckpt_cfg.initial_checkpoint_path, ckpt_cfg.initial_checkpoint_step
    if initial_checkpoint_path:
      params, ckpt_step, moments, no_moments = checkpoints.load_initial(initial_checkpoint_path,
                                                                        tr.abstract_state.params)
      opt_step = ckpt_step if ckpt_step is not None else (initial_checkpoint_step or 0)
      if ckpt_step is not None and initial_checkpoint_step not in (None, ckpt_step):
        say(f"note: INITIAL_CHECKPOINT_STEP={initial_checkpoint_step} ignored: the checkpoint records step {ckpt_step}")
      state = tr.replace_params(state, params, initial_step=opt_step, moments=moments)  # Adafactor continues, as T5X
      say(f"initialised parameters from {initial_checkpoint_path}; Adafactor continues from step {opt_step}"
          + _moments_line(tr.moments_report, moments, no_moments))
  if is_chief:  # the settings this start runs with (TRAIN_STEPS may differ from the first start's)
    os.makedirs(model_dir, exist_ok=True)
    run_guard.write_owned_file(os.path.join(model_dir, "config.gin"), gin.operative_config_str())
    run_guard.write_owned_file(os.path.join(model_dir, config_lib.RUN_CONFIG_FILE), config.to_json())
    if not restored or config.allow_changed_run or not os.path.isfile(os.path.join(model_dir, run_guard.RUN_FILE)):
      run_guard.record_run(model_dir, started.identity)
  has_record = os.path.isfile(os.path.join(model_dir, record.RECORD_FILE))
  if is_chief and task is not None and (not start_step or not has_record):
    vocab = task.output_features["targets"].vocabulary  # the model and its vocabulary, as data
    record.write_record(model_dir, model_config, *record.vocabulary_fields(vocab), vocab_size=vocab.vocab_size,
                        note=f"flan-jax train on {task.name}")

  shapes = {k: v.shape[1] for k, v in example.items()}
  step_flops = flops.train_step_flops(model_config, batch_size, *models.family_for(model_config).flops_lengths(shapes))
  peak = config.peak_flops_per_device or flops.peak_flops_for_device(jax.devices()[0])
  if peak is None and jax.devices()[0].platform == "cpu":
    peak = progress.cpu_peak_flops() / jax.local_device_count()
  logger = progress.MetricsLogger(model_dir, train_steps, step_flops, peak and peak * jax.device_count(),
                                 resume_step=start_step)
  end_step = train_steps if stop_after_steps is None else min(train_steps, start_step + stop_after_steps)
  if start_step >= train_steps:
    say(f"{model_dir} is already at step {start_step} >= TRAIN_STEPS={train_steps}; nothing to do")

  evaluator = None
  eval_period = config.evaluation.period
  if eval_period and config.evaluation.mixture_or_task_name:
    evaluator = evaluator_lib.training_evaluator(
        started.model, device_mesh, config.evaluation.mixture_or_task_name, max_examples=config.evaluation.max_examples,
        input_length=task_feature_lengths["inputs"], max_decode_len=task_feature_lengths["targets"])

  guard = _DivergenceGuard(config.on_nonfinite, ckpts, say)
  saved = kept.batches if kept is not None and kept.position == position else []
  inputs = data.ReadAhead(started.pipeline, position, depth=max(data_cfg.input_lookahead, 2), saved=saved, defer=True)

  def save(step: int) -> None:
    guard.check()
    if not tr.state_is_finite(state):
      raise run_guard.Diverged(f"parameters or optimizer state became non-finite at step {step}; not saved. "
                               f"{guard.last_good()}. {_DIVERGED_HINT}")
    ckpts.save(step, state, inputs.state())
    if data_cfg.input_lookahead:
      data.save_lookahead(model_dir, inputs.state()["batches_taken"], inputs.ahead(), stream)

  step = start_step
  t_start = time.perf_counter()
  try:
    for step in range(start_step + 1, end_step + 1):
      try:
        local = next(inputs)
      except StopIteration:
        raise ValueError(
            f"the input of {stream['mixture_or_task_name']!r} ended after {inputs.state()['batches_taken']} "
            f"batches, at step {step}: a training stream repeats, so one of its tasks has no example at "
            f"TASK_FEATURE_LENGTHS={dict(task_feature_lengths)} (few-shot variants drop prompts whose shortest "
            "form does not fit the inputs length); lengthen the inputs or leave that task out") from None
      state, step_metrics = tr.step(state, trainer.global_batch(local, tr.batch_shardings))
      guard.add(step, step_metrics["nonfinite"])
      logger.add(step_metrics, data.non_padding_tokens(local) * jax.process_count())
      ckpts.check()  # a background save that failed stops the run here
      stop = signals.should_stop()
      if step == start_step + 1:
        jax.block_until_ready(step_metrics)
        say(f"compiled and ran the first step in {time.perf_counter() - t_start:.1f}s")
        logger.log(step)
        logger.reset_clock()
        guard.check()
        inputs.start()  # a resumed run's pipeline is built from here on, its read-ahead feeding the steps
      elif step % config.log_every == 0 or step == end_step or stop:
        logger.log(step)
        guard.check()
      if step % ckpt_cfg.period == 0 or step == end_step or stop:
        save(step)
      if stop:
        ckpts.wait()
        raise run_guard.Preempted(
            f"{signals.received} at step {step}: saved checkpoint {ckpts.step_path(step)}; "
            f"run the same command to resume (exit code {run_guard.EXIT_PREEMPTED})")
      if evaluator is not None and (step % eval_period == 0 or step == end_step):
        evaluator_lib.evaluate_during_training(evaluator, state.params, step, model_dir, say)
    ckpts.close()
  except run_guard.SaveFailed:
    raise
  except BaseException:
    # Stopping for another reason: let saves already under way finish, so that the
    # checkpoints the message names are complete.
    try:
      ckpts.close()
    except run_guard.SaveFailed as e:
      say(f"also: {e}")
    raise
  finally:
    inputs.close()
    logger.close()
  if step > start_step:
    skipped = f" ({guard.skipped} non-finite steps skipped)" if guard.skipped else ""
    say(f"done: step {step}, checkpoint in {ckpts.directory}{skipped}")
  return logger.history


def _moments_line(report, moments, why) -> str:
  """How much of the initial checkpoint's Adafactor state the run continues from."""
  carried, missed = report
  if moments and not missed:
    return f" with its second-moment statistics ({carried} parameters)"
  if moments:
    return (f"; second-moment statistics carried for {carried} parameters, {len(missed)} start from zero "
            f"(factored otherwise, e.g. {missed[0]})")
  return f"; its second-moment statistics start from zero ({why})" if why else ""


_DIVERGED_HINT = ("Lower LEARNING_RATE and resume, or add --gin.train.on_nonfinite=\"'skip'\" to skip "
                  "such steps")


class _DivergenceGuard:
  """Collects each step's `nonfinite` flag (a device scalar) and checks them in batches, at
  logging steps and before every save, so the loop never waits on the device just for this."""

  def __init__(self, mode: str, ckpts: checkpoints.RunCheckpoints, say):
    self.mode, self.ckpts, self.say = mode, ckpts, say
    self.pending: list[tuple[int, Any]] = []
    self.skipped = 0

  def add(self, step: int, nonfinite) -> None:
    self.pending.append((step, nonfinite))

  def last_good(self) -> str:
    self.ckpts.wait()
    last = self.ckpts.latest_step()
    return (f"Last good checkpoint: {self.ckpts.step_path(last)}" if last is not None
            else f"No checkpoint was saved in {self.ckpts.directory}")

  def check(self) -> None:
    if not self.pending:
      return
    flags = jax.device_get([f for _, f in self.pending])
    bad = [s for (s, _), f in zip(self.pending, flags) if f > 0]
    self.pending.clear()
    if not bad:
      return
    if self.mode == "skip":
      self.skipped += len(bad)
      shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
      self.say(f"non-finite loss or gradient norm at step(s) {shown}: update skipped "
               f"({self.skipped} skipped so far)")
      return
    raise run_guard.Diverged(f"non-finite loss or gradient norm at step {bad[0]}; stopped without saving it. "
                             f"{self.last_good()}. {_DIVERGED_HINT}")


def main(argv: Sequence[str] | None = None) -> int:
  """Exit codes: 0 done, 2 configuration error, and those of `flan_jax.runtime.run_guard` (65 diverged,
  73 MODEL_DIR locked, 74 save failed, 75 preempted). `--print_config` prints the run's config
  (JSON, as MODEL_DIR/run_config.json will hold it) and exits before anything is built."""
  argv = list(sys.argv[1:] if argv is None else argv)
  print_only = "--print_config" in argv
  argv = [a for a in argv if a != "--print_config"]

  def entry():
    config = config_lib.run_config()
    if print_only:
      print(config.to_json(), end="", flush=True)
      return None
    return train(config)

  try:
    return gin_utils.run_entry_point("train", argv, "gin/recipes/quickstart.gin", entry,
                                     before_parse=None if print_only else distributed.initialize_from_env)
  except run_guard.RunStopped as e:
    print(f"flan-jax train: {gin_utils.strip_gin_context(str(e))}", file=sys.stderr, flush=True)
    if isinstance(e, run_guard.SaveFailed):
      # After an I/O failure tensorstore's writer threads cannot shut down cleanly and would
      # print a traceback each at interpreter exit; the message above is the whole story.
      sys.stdout.flush()
      os._exit(e.exit_code)
    return e.exit_code


if __name__ == "__main__":
  sys.exit(main())
