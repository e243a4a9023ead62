"""One run, one config: everything `flan-jax train` runs with, as typed dataclasses.

Gin files keep T5X's macros and bind them to the `train` configurable (gin/runs/finetune.gin:
`train.model_dir = %MODEL_DIR`, `train.z_loss = %Z_LOSS`, ...); that configurable is
`run_config` below, which turns its arguments into a `RunConfig`. Every command that needs
the run reads it from here, the same way from the same gin files:

  * `flan-jax train` calls `run_config()` (gin supplies every argument; a required one unset
    is an error naming it), prints it with `--print_config` and writes it to
    MODEL_DIR/run_config.json beside model.json;
  * `flan-jax plan` (analytic and --compile), `launch` and `sweep` read it from the parsed
    files with `from_parsed_gin()`, which leaves what is unset (MODEL_DIR, say) as None, so a
    direct binding such as `--gin.train.z_loss=1e-3` shapes the planned program exactly as
    it shapes the trained one.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
from typing import Any, Mapping, Sequence

import gin

from flan_jax import models
from flan_jax.core import optim, partitioning
from flan_jax.models.family import ModelConfig
from flan_jax.tasks import templates
from flan_jax.training import trainer

RUN_CONFIG_FILE = "run_config.json"


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """The training stream: what is read, at which lengths, how it is batched and sharded."""
  mixture_or_task_name: str | None
  task_feature_lengths: Mapping[str, int] | None
  batch_size: int | None
  task_modules: tuple[str, ...] = ("flan_jax.tasks.embedded",)
  use_cached_tasks: bool = False
  seqio_cache_dirs: tuple[str, ...] = ()
  pack: bool = True
  seed: int = 0
  sharding: str = "per_process"
  input_lookahead: int = 64
  data_dir: str | None = None  # prepared Flan data (`flan-jax data prepare`); None: FLAN_JAX_DATA_DIR or the default

  @property
  def fewshot_budget(self) -> int | None:
    """Tokens a few-shot prompt may take (FLAN's 1,920/2,048 of the inputs length); tasks
    registered with their own `max_input_tokens` keep theirs."""
    if not self.task_feature_lengths or "inputs" not in self.task_feature_lengths:
      return None
    return templates.fewshot_budget(self.task_feature_lengths["inputs"])


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
  model_dir: str | None
  initial_checkpoint_path: str | None = None
  initial_checkpoint_step: int | None = None
  period: int = 1000
  keep: int | None = 3
  async_save: bool = True
  fallback_to_previous: bool = False


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
  """Evaluation inside the training loop (0 period: never)."""
  period: int = 0
  mixture_or_task_name: str | None = None
  max_examples: int = 16


@dataclasses.dataclass(frozen=True)
class RunConfig:
  model: ModelConfig | None
  data: DataConfig
  optimizer: optim.OptimizerConfig
  loss: trainer.LossConfig
  checkpoint: CheckpointConfig
  partitioning: partitioning.MeshConfig
  evaluation: EvaluationConfig
  train_steps: int | None
  num_microbatches: int = 1
  seed: int = 0
  log_every: int = 10
  on_nonfinite: str = "stop"
  peak_flops_per_device: float | None = None
  allow_changed_run: bool = False

  def to_dict(self) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(self):
      value = getattr(self, f.name)
      if f.name == "model":
        out["model"] = None if value is None else {"family": models.family_for(value).name, **value.to_dict()}
      elif dataclasses.is_dataclass(value):
        out[f.name] = dataclasses.asdict(value)
      else:
        out[f.name] = value
    out["data"]["fewshot_budget"] = self.data.fewshot_budget
    return out

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=1, default=_jsonable) + "\n"


def _jsonable(value: Any) -> Any:
  if isinstance(value, (tuple, set, frozenset)):
    return list(value)
  if isinstance(value, Mapping):
    return dict(value)
  return repr(value)


def _tuple(value: Sequence[str] | None) -> tuple[str, ...]:
  return tuple(value or ())


@gin.configurable("train")
def run_config(*, model_dir: str = gin.REQUIRED, mixture_or_task_name: str = gin.REQUIRED,
               task_feature_lengths: Mapping[str, int] = gin.REQUIRED, batch_size: int = gin.REQUIRED,
               train_steps: int = gin.REQUIRED, model_config: Any = gin.REQUIRED,
               optimizer: optim.OptimizerConfig = optim.OptimizerConfig(),
               mesh: partitioning.MeshConfig = partitioning.MeshConfig(),
               initial_checkpoint_path: str | None = None, initial_checkpoint_step: int | None = None,
               use_cached_tasks: bool = False, seqio_cache_dirs: Sequence[str] = (),
               task_modules: Sequence[str] = ("flan_jax.tasks.embedded",), num_microbatches: int = 1,
               z_loss: float = 1e-4, label_smoothing: float = 0.0,
               loss_normalizing_factor: float | str | None = "NUM_REAL_TARGET_TOKENS",
               checkpoint_period: int = 1000, keep_checkpoints: int | None = 3, async_checkpointing: bool = True,
               log_every: int = 10, seed: int = 0, data_seed: int = 0, pack: bool = True,
               data_sharding: str = "per_process",
               peak_flops_per_device: float | None = None, eval_period: int = 0,
               eval_mixture_or_task_name: str | None = None, eval_max_examples: int = 16,
               on_nonfinite: str = "stop", fallback_to_previous_checkpoint: bool = False,
               input_lookahead: int = 64, allow_changed_run: bool = False,
               data_dir: str | None = None) -> RunConfig:
  """The run `train.*` gin bindings describe (T5X's names: gin/runs/finetune.gin binds them to
  the macros MODEL_DIR, MIXTURE_OR_TASK_NAME, TASK_FEATURE_LENGTHS, BATCH_SIZE, TRAIN_STEPS,
  INITIAL_CHECKPOINT_PATH, USE_CACHED_TASKS, Z_LOSS, DATA_DIR, ...)."""
  return RunConfig(
      model=model_config,
      data=DataConfig(mixture_or_task_name=mixture_or_task_name,
                      task_feature_lengths=None if task_feature_lengths is None else dict(task_feature_lengths),
                      batch_size=batch_size, task_modules=_tuple(task_modules), use_cached_tasks=use_cached_tasks,
                      seqio_cache_dirs=_tuple(seqio_cache_dirs), pack=pack, seed=data_seed, sharding=data_sharding,
                      input_lookahead=input_lookahead, data_dir=data_dir),
      optimizer=optimizer,
      loss=trainer.LossConfig(z_loss=z_loss, label_smoothing=label_smoothing, loss_normalizing_factor=loss_normalizing_factor),
      checkpoint=CheckpointConfig(model_dir=model_dir, initial_checkpoint_path=initial_checkpoint_path,
                                  initial_checkpoint_step=initial_checkpoint_step, period=checkpoint_period,
                                  keep=keep_checkpoints, async_save=async_checkpointing,
                                  fallback_to_previous=fallback_to_previous_checkpoint),
      partitioning=mesh,
      evaluation=EvaluationConfig(period=eval_period, mixture_or_task_name=eval_mixture_or_task_name,
                                  max_examples=eval_max_examples),
      train_steps=train_steps, num_microbatches=num_microbatches, seed=seed, log_every=log_every,
      on_nonfinite=on_nonfinite, peak_flops_per_device=peak_flops_per_device, allow_changed_run=allow_changed_run)


def from_parsed_gin() -> RunConfig:
  """The RunConfig of the gin config parsed now, without requiring what planning does not need:
  an unset argument (a required macro such as MODEL_DIR left unbound) is None."""
  kwargs = {}
  for name, param in inspect.signature(run_config.__wrapped__).parameters.items():
    try:
      value = gin.query_parameter(f"train.{name}")
    except ValueError:  # not bound: run_config's default, which gin fills from its own bindings
      value = param.default
      if isinstance(value, (optim.OptimizerConfig, partitioning.MeshConfig)):
        value = type(value)()
    else:
      if isinstance(value, gin.config.ConfigurableReference):
        try:
          value = value.scoped_configurable_fn()
        except (ValueError, TypeError):  # a macro left unset
          value = None
    kwargs[name] = None if value is gin.REQUIRED else value
  return run_config.__wrapped__(**kwargs)
