"""Train state and the jitted, sharded train step.

`Trainer.train_step(state, batch) -> (state, metrics)` is a pure function compiled
once with explicit in/out shardings (the modern pjit) and the state donated. The
batch holds the features of a seqio feature converter as global `jax.Array`s.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding

from flan_jax.core import losses, optim, partitioning
from flan_jax import models

PyTree = Any
Batch = dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: PyTree
  opt_state: PyTree


@dataclasses.dataclass(frozen=True)
class LossConfig:
  z_loss: float = 1e-4
  label_smoothing: float = 0.0
  loss_normalizing_factor: float | str | None = "NUM_REAL_TARGET_TOKENS"


def _microbatch(x: jax.Array, num_microbatches: int) -> jax.Array:
  """[B, ...] -> [M, B/M, ...], taking rows m, m+M, m+2M, ... into microbatch m so that
  every data shard keeps contributing to every microbatch."""
  b = x.shape[0]
  return x.reshape((b // num_microbatches, num_microbatches) + x.shape[1:]).swapaxes(0, 1)


class Trainer:
  """Owns the model, optimizer, mesh and shardings; compiles init and step once."""
  moments_report: tuple = (0, [])  # set by replace_params: (parameters carried, names not carried)

  def __init__(self, model: nn.Module, optimizer: optax.GradientTransformation, mesh: Mesh,
               example_batch: dict[str, jax.ShapeDtypeStruct], *, loss: LossConfig = LossConfig(),
               num_microbatches: int = 1, learning_rate_fn: Callable | None = None, dropout_seed: int = 0,
               skip_nonfinite_steps: bool = False):
    self.model, self.mesh = model, mesh
    self.family = models.family_for(model)
    self.skip_nonfinite_steps = skip_nonfinite_steps
    self.loss_config = loss
    self.num_microbatches = num_microbatches
    self.learning_rate_fn = learning_rate_fn
    self.dropout_key = jax.random.key_data(jax.random.key(dropout_seed))
    self.batch_shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in example_batch.items()}
    batch_size = next(iter(self.batch_shapes.values())).shape[0]
    dp = partitioning.data_parallel_size(mesh)
    if batch_size % dp:
      raise ValueError(f"BATCH_SIZE={batch_size} is not divisible by the data-parallel size {dp} "
                       f"(mesh {dict(mesh.shape)})")
    if batch_size % num_microbatches or (batch_size // num_microbatches) % dp:
      raise ValueError(f"BATCH_SIZE={batch_size} split into num_microbatches={num_microbatches} gives "
                       f"microbatches not divisible by the data-parallel size {dp}")
    self.batch_shardings = {k: partitioning.batch_sharding(mesh, len(v.shape))
                            for k, v in self.batch_shapes.items()}

    boxed = jax.eval_shape(self._init_params_boxed, jax.random.key(0))
    self.optimizer = optim.bind_param_axes(optimizer, boxed)  # Adafactor factors by logical names
    self.abstract_state, self.state_shardings = self._abstract_state(boxed)
    rep = partitioning.replicated(mesh)
    self._init = jax.jit(self._init_fn, out_shardings=self.state_shardings)
    self.train_step = jax.jit(self._train_step, in_shardings=(self.state_shardings, self.batch_shardings),
                              out_shardings=(self.state_shardings, rep), donate_argnums=(0,))
    self._state_is_finite = jax.jit(_all_finite, in_shardings=(self.state_shardings,), out_shardings=rep)

  # -- state -------------------------------------------------------------------------------

  def _init_params_boxed(self, rng: jax.Array) -> PyTree:
    dummy = {k: jnp.zeros(v.shape[1:], v.dtype)[None] for k, v in self.batch_shapes.items()}
    return self.model.init(rng, **dummy, deterministic=True)["params"]

  def _init_fn(self, rng: jax.Array) -> TrainState:
    params = nn.unbox(self._init_params_boxed(rng))
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=self.optimizer.init(params))

  def _abstract_state(self, boxed: PyTree) -> tuple[TrainState, TrainState]:
    param_shardings = partitioning.shardings_for(boxed, self.mesh)
    params = nn.unbox(boxed)
    opt_state = jax.eval_shape(self.optimizer.init, params)
    rep = partitioning.replicated(self.mesh)
    # Adafactor's statistics shard by the logical names of the dims they keep.
    opt_shardings = optim.state_shardings(self.optimizer, opt_state, params, param_shardings, self.mesh)
    shardings = TrainState(step=rep, params=param_shardings, opt_state=opt_shardings)
    abstract = TrainState(step=jax.ShapeDtypeStruct((), jnp.int32), params=params, opt_state=opt_state)
    abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
    return abstract, shardings

  def init_state(self, seed: int = 0) -> TrainState:
    with partitioning.mesh_context(self.mesh):
      return self._init(jax.random.key(seed))

  def replace_params(self, state: TrainState, params: PyTree, initial_step: int = 0,
                     moments: Mapping | None = None) -> TrainState:
    """A fresh optimizer state around given parameters (INITIAL_CHECKPOINT_PATH).

    `initial_step`: the optimizer step the parameters were trained to (the checkpoint's
    step counter, or `train.initial_checkpoint_step`). Adafactor continues counting from
    it, as T5X does when it fine-tunes a pre-trained checkpoint, so its second-moment
    decay is 1 - (initial_step + 1)^-0.8 from the first update instead of restarting at 0.
    `moments`: Adafactor statistics to continue from (a T5X checkpoint's, see
    `optim.with_moments`); `self.moments_report` then says how many parameters took them.
    """
    params = jax.device_put(params, self.state_shardings.params)
    init_opt = jax.jit(self.optimizer.init, out_shardings=self.state_shardings.opt_state)
    opt_state = optim.with_initial_step(init_opt(params), initial_step)
    opt_state = jax.device_put(opt_state, self.state_shardings.opt_state)
    self.moments_report = (0, [])
    if moments:
      place = lambda x, like: jax.device_put(np.asarray(x, like.dtype), like.sharding)
      opt_state, carried, missed = optim.with_moments(self.optimizer, opt_state, params, moments, place)
      self.moments_report = (carried, missed)
    return state.replace(params=params, opt_state=opt_state, step=state.step)

  # -- loss and steps ----------------------------------------------------------------------

  def _loss_sums(self, params: PyTree, batch: Batch, weights_BxL: jax.Array, rng: jax.Array | None):
    deterministic = rng is None
    rngs = None if deterministic else {"dropout": rng}
    inputs, targets, real = self.family.loss_inputs(batch)
    logits = self.model.apply({"params": params}, **inputs, deterministic=deterministic, rngs=rngs)
    loss_sum, z_sum = losses.cross_entropy_with_z_loss(
        logits, targets, weights_BxL, self.loss_config.z_loss, self.loss_config.label_smoothing)
    real = real.astype(jnp.float32)
    correct = jnp.sum((jnp.argmax(logits, -1) == targets) * real)
    return loss_sum, {"z_loss": z_sum, "correct": correct, "tokens": jnp.sum(real)}

  def _token_weights(self, batch: Batch) -> jax.Array:
    return losses.token_weights(batch["decoder_loss_weights"], batch.get("decoder_segment_ids"),
                                self.loss_config.loss_normalizing_factor)

  def _train_step(self, state: TrainState, batch: Batch) -> tuple[TrainState, dict]:
    weights = self._token_weights(batch)
    step_key = jax.random.fold_in(jax.random.wrap_key_data(self.dropout_key), state.step)
    grad_fn = jax.value_and_grad(self._loss_sums, has_aux=True)
    m = self.num_microbatches
    if m == 1:
      (loss, aux), grads = grad_fn(state.params, batch, weights, step_key)
    else:
      micro = jax.tree.map(lambda x: _microbatch(x, m), (batch, weights))

      def body(carry, xs):
        i, (mb, mw) = xs
        (l, a), g = grad_fn(state.params, mb, mw, jax.random.fold_in(step_key, i))
        return jax.tree.map(jnp.add, carry, (l, a, g)), None

      zero = jnp.zeros((), jnp.float32)
      init = (zero, {"z_loss": zero, "correct": zero, "tokens": zero}, jax.tree.map(jnp.zeros_like, state.params))
      (loss, aux, grads), _ = jax.lax.scan(body, init, (jnp.arange(m), micro))
    updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    if self.skip_nonfinite_steps:
      # The divergence guard's "skip" mode: a step whose loss, gradients or new state are
      # not finite leaves parameters and optimizer state as they were (the step counter
      # still advances with the data); `skipped` counts it.
      finite &= _all_finite((params, opt_state))
      params, opt_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                                       (params, opt_state), (state.params, state.opt_state))
    metrics = {
        "loss": loss,
        "z_loss": aux["z_loss"],
        "accuracy": aux["correct"] / jnp.maximum(aux["tokens"], 1.0),
        "target_tokens": aux["tokens"],
        "grad_norm": grad_norm,
        "nonfinite": 1.0 - finite.astype(jnp.float32),
    }
    if self.learning_rate_fn is not None:
      metrics["learning_rate"] = jnp.asarray(self.learning_rate_fn(state.step), jnp.float32)
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

  def loss_and_grads(self, params: PyTree, batch: Batch) -> tuple[jax.Array, PyTree]:
    """Deterministic loss and gradients (no dropout), for tests and diagnostics."""
    with partitioning.mesh_context(self.mesh):
      return self.lower_loss_and_grads(params, batch).compile()(params)

  def lower_loss_and_grads(self, params: PyTree, batch: Batch) -> jax.stages.Lowered:
    """`loss_and_grads` lowered for `params` (its compiled memory: `.compile().memory_analysis()`)."""
    weights = self._token_weights(batch)
    fn = jax.value_and_grad(lambda p: self._loss_sums(p, batch, weights, None)[0])
    with partitioning.mesh_context(self.mesh):
      return jax.jit(fn, in_shardings=(self.state_shardings.params,),
                     out_shardings=(partitioning.replicated(self.mesh), self.state_shardings.params)).lower(params)

  def lower_train_step(self) -> jax.stages.Lowered:
    """`train_step` lowered for the abstract state and batch, no arrays needed: for
    ahead-of-time compilation on any mesh's devices (`flan-jax plan --compile`)."""
    batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=self.batch_shardings[k])
             for k, v in self.batch_shapes.items()}
    with partitioning.mesh_context(self.mesh):
      return self.train_step.lower(self.abstract_state, batch)

  def step(self, state: TrainState, batch: Batch) -> tuple[TrainState, dict]:
    with partitioning.mesh_context(self.mesh):
      return self.train_step(state, batch)

  def state_is_finite(self, state: TrainState) -> bool:
    """Whether every parameter and optimizer-state value is finite (checked before a save)."""
    with partitioning.mesh_context(self.mesh):
      return bool(self._state_is_finite(state))


def _all_finite(tree: PyTree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def global_batch(local_batch: dict[str, np.ndarray], shardings: dict[str, NamedSharding]) -> Batch:
  """Per-host numpy arrays -> global jax.Arrays laid out on the batch sharding."""
  missing = set(shardings) - set(local_batch)
  if missing:
    raise ValueError(f"batch is missing features {sorted(missing)}; has {sorted(local_batch)}")
  return {k: jax.make_array_from_process_local_data(shardings[k], np.asarray(local_batch[k]))
          for k in shardings}
