"""Adafactor as T5X fine-tunes Flan-T5, and learning-rate schedules."""
from __future__ import annotations

import dataclasses

import gin
import jax.numpy as jnp
import optax


@gin.configurable
@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
  """T5X fine-tuning defaults: factored second moments, decay 0.8, update clipping 1.0,
  no momentum, updates scaled by parameter RMS, constant learning rate 1e-3."""
  learning_rate: float = 1e-3
  schedule: str = "constant"          # 'constant' | 'rsqrt' | 'linear_decay' | 'cosine'
  warmup_steps: int = 0
  decay_steps: int = 0                # for linear_decay / cosine; 0 = TRAIN_STEPS
  decay_rate: float = 0.8
  clipping_threshold: float | None = 1.0
  momentum: float | None = None
  multiply_by_parameter_scale: bool = True
  factored: bool = True
  weight_decay_rate: float | None = None
  max_grad_norm: float | None = None  # global-norm clipping before Adafactor (off in T5X)


def learning_rate_schedule(cfg: OptimizerConfig, total_steps: int) -> optax.Schedule:
  """'constant' and T5's 'rsqrt' (lr * 1/sqrt(max(step, warmup))) and decays, with linear warmup."""
  lr, warm = cfg.learning_rate, cfg.warmup_steps
  if cfg.schedule == "constant":
    base = optax.constant_schedule(lr)
  elif cfg.schedule == "rsqrt":
    w = max(warm, 1)
    base = lambda step: lr * jnp.sqrt(w) / jnp.sqrt(jnp.maximum(step, w).astype(jnp.float32))
  elif cfg.schedule == "linear_decay":
    base = optax.linear_schedule(lr, 0.0, max(cfg.decay_steps or total_steps, 1))
  elif cfg.schedule == "cosine":
    base = optax.cosine_decay_schedule(lr, max(cfg.decay_steps or total_steps, 1))
  else:
    raise ValueError(f"OptimizerConfig.schedule={cfg.schedule!r}; use constant, rsqrt, linear_decay or cosine")
  if warm <= 0 or cfg.schedule == "rsqrt":
    if cfg.schedule == "rsqrt" and warm > 0:
      ramp = lambda step: jnp.minimum(1.0, (step + 1) / warm)
      return lambda step: base(step) * ramp(step)
    return base
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warm), base], [warm])


def make_optimizer(cfg: OptimizerConfig, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  schedule = learning_rate_schedule(cfg, total_steps)
  tx = optax.adafactor(
      learning_rate=schedule, decay_rate=cfg.decay_rate, clipping_threshold=cfg.clipping_threshold,
      momentum=cfg.momentum, multiply_by_parameter_scale=cfg.multiply_by_parameter_scale,
      factored=cfg.factored, weight_decay_rate=cfg.weight_decay_rate)
  if cfg.max_grad_norm:
    tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), tx)
  return tx, schedule
