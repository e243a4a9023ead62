"""Adafactor as T5X fine-tunes Flan-T5 (t5x/adafactor.py), and learning-rate schedules.

`Adafactor` is an optax-style gradient transformation of ours (``init`` / ``update``)
whose factoring is driven by the logical axis names every parameter carries. Choices,
one per line (all T5X's unless said otherwise):
  * factor rules by logical name: embed -> ROW; vocab, mlp, heads, kv, joined_kv -> COLUMN;
    layers (the scanned stack) -> BATCH; relpos_buckets -> NONE (`LOGICAL_FACTOR_RULES`).
  * a rule without both a ROW and a COLUMN dim is unfactored; ROW+COLUMN+NONE is an error.
  * rank <= 2 parameters without a BATCH dim ignore the rule and use the heuristic: factor
    the two largest dims when the second largest is >= `min_dim_size_to_factor` (128).
  * an unnamed dim of size 1 (the single KV head of multi-query attention) is left out of
    the rule, as T5X's 2-D (embed, kv) kernel has no such dim (ours, to keep [D, 1, K]).
  * BATCH dims (per-layer statistics under scan) are excluded from the parameter-scale
    RMS and the update-clipping RMS, so a scanned stack updates exactly as unscanned layers.
  * second-moment decay 1 - (t + 1)^-decay_rate with t = Adafactor step - step_offset.
  * the Adafactor step continues from `initial_step` (the pre-training step of an initial
    checkpoint; `Trainer.replace_params`), while the learning-rate schedule counts this
    run's updates from 0 (ours: T5X's schedules are written against the absolute step).
  * epsilon1 = 1e-30 is added to squared gradients; parameter scale = max(RMS, epsilon2 = 1e-3).
  * update clipping divides by max(1, RMS(update) / clipping_threshold).
  * momentum (beta1) off by default; weight decay multiplies the parameter by (1 - rate).
  * optional global-norm gradient clipping before the statistics (`max_grad_norm`).
  * factored statistics keep the logical names of the dims they keep, so they shard by the
    same rules as the parameters (T5X replicated them).
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import gin
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from flan_jax.core import partitioning

PyTree = Any


class FactorDim(enum.Enum):
  NONE = "none"      # not factored
  BATCH = "batch"    # a stack of independent parameters (scanned layers): never averaged over
  ROW = "row"
  COLUMN = "column"


# T5X's standard_logical_factor_rules, for the logical names our modules use.
LOGICAL_FACTOR_RULES: Mapping[str, FactorDim] = {
    "vocab": FactorDim.COLUMN,
    "embed": FactorDim.ROW,
    "mlp": FactorDim.COLUMN,
    "heads": FactorDim.COLUMN,
    "kv": FactorDim.COLUMN,
    "joined_kv": FactorDim.COLUMN,
    "relpos_buckets": FactorDim.NONE,
    "layers": FactorDim.BATCH,
    "stack": FactorDim.BATCH,
    "q_wi_fused": FactorDim.COLUMN,
    "o_wo_fused": FactorDim.COLUMN,
    "multiquery_heads": FactorDim.COLUMN,
    "kv_fused": FactorDim.COLUMN,
    "layer_norm_scale": FactorDim.NONE,
    "mlp_activations": FactorDim.COLUMN,
}


@dataclasses.dataclass(frozen=True, eq=False)  # each subclass says how it compares
class AdafactorSettings:
  """Adafactor's hyperparameters, as T5X names them; the one list both the gin-configurable
  `OptimizerConfig` and the `Adafactor` transformation take their fields from."""
  decay_rate: float = 0.8
  step_offset: int = 0
  clipping_threshold: float | None = 1.0
  momentum: float | None = None
  multiply_by_parameter_scale: bool = True
  factored: bool = True
  weight_decay_rate: float | None = None
  max_grad_norm: float | None = None  # global-norm clipping before Adafactor (off in T5X)
  min_dim_size_to_factor: int = 128
  epsilon1: float = 1e-30
  epsilon2: float = 1e-3
  max_parameter_scale: float | None = None


@gin.configurable
@dataclasses.dataclass(frozen=True)
class OptimizerConfig(AdafactorSettings):
  """T5X fine-tuning defaults: factored second moments, decay 0.8, update clipping 1.0,
  no momentum, updates scaled by parameter RMS, constant learning rate 1e-3.

  `step_offset` is T5X's: subtracted from the Adafactor step in the decay schedule (set
  it to the initial checkpoint's step to restart the second-moment statistics).
  `factor_rules` adds or overrides (logical name, 'row'|'column'|'batch'|'none') pairs.
  """
  learning_rate: float = 1e-3
  schedule: str = "constant"          # 'constant' | 'rsqrt' | 'linear_decay' | 'cosine'
  warmup_steps: int = 0
  decay_steps: int = 0                # for linear_decay / cosine; 0 = TRAIN_STEPS
  factor_rules: tuple[tuple[str, str], ...] = ()


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


# ----------------------------------------------------------------------------------------
# Which dims are factored, averaged and batched, per parameter.


@dataclasses.dataclass(frozen=True)
class FactorPlan:
  """How Adafactor treats one parameter: `averaging_dims` feed the parameter-scale and
  clipping RMS; `row_dims` / `col_dims` (None: unfactored) are reduced away in v_col /
  v_row respectively (v_row keeps the rows, v_col the columns)."""
  averaging_dims: tuple[int, ...]
  row_dims: tuple[int, ...] | None = None
  col_dims: tuple[int, ...] | None = None

  @property
  def factored(self) -> bool:
    return self.row_dims is not None


def _factor_dim(value: Any) -> FactorDim:
  if isinstance(value, FactorDim):
    return value
  names = {"row": FactorDim.ROW, "col": FactorDim.COLUMN, "column": FactorDim.COLUMN,
           "batch": FactorDim.BATCH, "none": FactorDim.NONE, "unfactorized": FactorDim.NONE}
  if str(value).lower() not in names:
    raise ValueError(f"OptimizerConfig.factor_rules: {value!r} is not one of row, column, batch, none")
  return names[str(value).lower()]


def heuristic_factored_dims(shape: Sequence[int], min_dim_size_to_factor: int = 128):
  """Adafactor's original rule: factor the two largest dims if the smaller of them is big
  enough; on ties the earlier dim is the row. Returns ((row,), (col,)) or None."""
  if len(shape) < 2:
    return None
  order = np.argsort(np.asarray(shape), kind="stable")
  if shape[order[-2]] < min_dim_size_to_factor:
    return None
  return (int(order[-2]),), (int(order[-1]),)


def factor_plan(shape: Sequence[int], axes: Sequence[str | None] | None, *, factored: bool = True,
                rules: Mapping[str, FactorDim] = LOGICAL_FACTOR_RULES, min_dim_size_to_factor: int = 128,
                name: str = "parameter") -> FactorPlan:
  """T5X's `_parse_rule` + `set_param_axes` for a parameter with logical axis names."""
  shape = tuple(int(s) for s in shape)
  all_dims = tuple(range(len(shape)))
  if not factored:
    return FactorPlan(all_dims)
  if axes is not None and len(axes) == 0 and shape:
    axes = None  # an unannotated parameter
  if axes is None:  # no names: the heuristic, which T5X allows for rank <= 2 only
    if len(shape) > 2:
      raise ValueError(f"Adafactor: {name} {shape} has rank > 2 but no logical axis names; T5X's "
                       "factoring needs them (build the optimizer with optim.bind_param_axes)")
    f = heuristic_factored_dims(shape, min_dim_size_to_factor)
    return FactorPlan(all_dims, *(f or (None, None)))
  if len(axes) != len(shape):
    raise ValueError(f"Adafactor: {name} {shape} has logical axes {tuple(axes)} of another rank")
  kept = [i for i, (a, s) in enumerate(zip(axes, shape)) if not (a is None and s == 1)]
  rule = []
  for i in kept:
    a = axes[i]
    if a is None or a not in rules:
      raise ValueError(f"Adafactor: no factor rule for dim {i} ({a!r}) of {name} {shape}; add one with "
                       f"OptimizerConfig.factor_rules = (('{a}', 'row'|'column'|'batch'|'none'),)")
    rule.append(_factor_dim(rules[a]))
  if FactorDim.ROW in rule and FactorDim.COLUMN in rule and FactorDim.NONE in rule:
    raise ValueError(f"Adafactor: incomplete factor rule {[r.value for r in rule]} for {name} {tuple(axes)}")
  if FactorDim.ROW not in rule or FactorDim.COLUMN not in rule:
    rule = [FactorDim.NONE if r in (FactorDim.ROW, FactorDim.COLUMN) else r for r in rule]
  batched = tuple(kept[j] for j, r in enumerate(rule) if r == FactorDim.BATCH)
  averaging = tuple(d for d in all_dims if d not in batched)
  if len(kept) <= 2 and not batched:  # T5X falls back to the heuristic here
    f = heuristic_factored_dims([shape[i] for i in kept], min_dim_size_to_factor)
    if f is None:
      return FactorPlan(all_dims)
    return FactorPlan(all_dims, (kept[f[0][0]],), (kept[f[1][0]],))
  rows = tuple(kept[j] for j, r in enumerate(rule) if r == FactorDim.ROW)
  cols = tuple(kept[j] for j, r in enumerate(rule) if r == FactorDim.COLUMN)
  if not rows:
    return FactorPlan(averaging)
  return FactorPlan(averaging, rows, cols)


# ----------------------------------------------------------------------------------------
# The transformation.


class AdafactorState(NamedTuple):
  count: jax.Array          # updates applied in this run (the learning-rate schedule's step)
  initial_step: jax.Array   # Adafactor step of the initial checkpoint (continued pre-training count)
  v_row: PyTree
  v_col: PyTree
  v: PyTree
  m: PyTree


def _placeholder() -> jax.Array:
  return jnp.zeros((1,), jnp.float32)


def _delete(seq: Sequence, dims: Sequence[int]) -> tuple:
  return tuple(x for i, x in enumerate(seq) if i not in dims)


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity (jit caches on it)
class Adafactor(AdafactorSettings):
  """T5X's Adafactor as an optax gradient transformation (see the module docstring).

  `param_axes`: a tree like the parameters whose leaves are tuples of logical axis names
  (or PartitionSpecs); without it only rank <= 2 parameters are accepted (heuristic).
  Unpacks as `(init, update)` like `optax.GradientTransformation`, so `optax.chain` takes it.
  """
  learning_rate: float | Callable = 1e-3
  rules: Mapping[str, FactorDim] = dataclasses.field(default_factory=lambda: dict(LOGICAL_FACTOR_RULES))
  param_axes: PyTree = None

  def __iter__(self):
    return iter((self.init, self.update))

  def bind(self, param_axes: PyTree) -> "Adafactor":
    return dataclasses.replace(self, param_axes=param_axes)

  # -- per-parameter plans ------------------------------------------------------------------

  def plans(self, params: PyTree) -> PyTree:
    """A FactorPlan per parameter leaf (same tree structure as `params`)."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    if self.param_axes is None:
      axes = [None] * len(flat)
    else:
      axes = jax.tree.leaves(self.param_axes, is_leaf=lambda x: isinstance(x, (tuple, P)) or x is None)
      if len(axes) != len(flat):
        raise ValueError(f"Adafactor: {len(axes)} logical-axis entries for {len(flat)} parameters")
    out = [factor_plan(x.shape, None if a is None else tuple(a), factored=self.factored, rules=self.rules,
                       min_dim_size_to_factor=self.min_dim_size_to_factor,
                       name=jax.tree_util.keystr(path, simple=True, separator="/"))
           for (path, x), a in zip(flat, axes)]
    return jax.tree.unflatten(treedef, out)

  # -- init / update ----------------------------------------------------------------------

  def init(self, params: PyTree) -> AdafactorState:
    plans = self.plans(params)
    leaves, treedef = jax.tree.flatten(params)
    plan_leaves = treedef.flatten_up_to(plans)
    v_row, v_col, v, m = [], [], [], []
    for x, plan in zip(leaves, plan_leaves):
      if plan.factored:
        v_row.append(jnp.zeros(_delete(x.shape, plan.col_dims), jnp.float32))
        v_col.append(jnp.zeros(_delete(x.shape, plan.row_dims), jnp.float32))
        v.append(_placeholder())
      else:
        v_row.append(_placeholder())
        v_col.append(_placeholder())
        v.append(jnp.zeros(x.shape, jnp.float32))
      m.append(jnp.zeros(x.shape, jnp.float32) if self.momentum is not None else _placeholder())
    unflat = lambda xs: jax.tree.unflatten(treedef, xs)
    zero = jnp.zeros((), jnp.int32)
    return AdafactorState(zero, zero, unflat(v_row), unflat(v_col), unflat(v), unflat(m))

  def _learning_rate(self, count: jax.Array) -> jax.Array:
    lr = self.learning_rate
    return jnp.asarray(lr(count) if callable(lr) else lr, jnp.float32)

  def update(self, grads: PyTree, state: AdafactorState, params: PyTree | None = None):
    if params is None:
      raise ValueError("Adafactor.update needs the parameters (parameter scale)")
    plans = self.plans(params)
    leaves, treedef = jax.tree.flatten(params)
    flat = lambda tree: treedef.flatten_up_to(tree)
    grad_leaves = [g.astype(jnp.float32) for g in flat(grads)]
    if self.max_grad_norm:
      norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in grad_leaves))
      scale = jnp.minimum(1.0, self.max_grad_norm / norm)
      grad_leaves = [g * scale for g in grad_leaves]
    step = (state.initial_step + state.count - self.step_offset).astype(jnp.float32)
    decay = 1.0 - (step + 1.0) ** (-self.decay_rate)
    mixing = 1.0 - decay
    lr = self._learning_rate(state.count)
    outs = [self._update_one(p, g, plan, vr, vc, v, m, decay, mixing, lr)
            for p, g, plan, vr, vc, v, m in zip(leaves, grad_leaves, flat(plans), flat(state.v_row),
                                                flat(state.v_col), flat(state.v), flat(state.m))]
    cols = list(zip(*outs)) if outs else [()] * 5
    unflat = lambda xs: jax.tree.unflatten(treedef, list(xs))
    new_state = AdafactorState(state.count + 1, state.initial_step, unflat(cols[1]), unflat(cols[2]),
                               unflat(cols[3]), unflat(cols[4]))
    return unflat(cols[0]), new_state

  def _update_one(self, param, grad, plan: FactorPlan, v_row, v_col, v, m, decay, mixing, lr):
    p32 = param.astype(jnp.float32)
    scale = lr
    if self.multiply_by_parameter_scale:
      param_scale = jnp.sqrt(jnp.mean(p32 * p32, axis=plan.averaging_dims, keepdims=True))
      param_scale = jnp.maximum(param_scale, self.epsilon2)
      if self.max_parameter_scale is not None:
        param_scale = jnp.minimum(param_scale, self.max_parameter_scale)
      scale = scale * param_scale
    grad_sqr = grad * grad + self.epsilon1
    if plan.factored:
      rows, cols = plan.row_dims, plan.col_dims
      v_row = decay * v_row + mixing * jnp.mean(grad_sqr, axis=cols)
      v_col = decay * v_col + mixing * jnp.mean(grad_sqr, axis=rows)
      rows_in_v_row = tuple(d - sum(c < d for c in cols) for d in rows)
      row_mean = jnp.mean(v_row, axis=rows_in_v_row, keepdims=True)
      row_factor = (v_row / row_mean) ** -0.5
      col_factor = v_col ** -0.5
      y = grad * jnp.expand_dims(row_factor, cols) * jnp.expand_dims(col_factor, rows)
    else:
      v = decay * v + mixing * grad_sqr
      y = grad * v ** -0.5
    if self.clipping_threshold is not None:
      rms = jnp.sqrt(jnp.mean(y * y, axis=plan.averaging_dims, keepdims=True))
      y = y / jnp.maximum(1.0, rms / self.clipping_threshold)
    step = scale * y
    if self.momentum is not None:
      m = self.momentum * m + (1.0 - self.momentum) * step
      step = m
    update = -step
    if self.weight_decay_rate is not None:
      update = update - self.weight_decay_rate * p32
    return update.astype(param.dtype), v_row, v_col, v, m

  # -- sharding ---------------------------------------------------------------------------

  def state_logical_specs(self, params: PyTree) -> AdafactorState:
    """Logical PartitionSpecs of the state: unfactored statistics and momentum take their
    parameter's names; v_row / v_col the names of the dims they keep; scalars none."""
    plans = self.plans(params)
    leaves, treedef = jax.tree.flatten(params)
    if self.param_axes is None:
      axes = [(None,) * x.ndim for x in leaves]
    else:
      axes = [tuple(a) for a in jax.tree.leaves(self.param_axes, is_leaf=lambda x: isinstance(x, (tuple, P)))]
    v_row, v_col, v, m = [], [], [], []
    for a, plan in zip(axes, treedef.flatten_up_to(plans)):
      if plan.factored:
        v_row.append(P(*_delete(a, plan.col_dims)))
        v_col.append(P(*_delete(a, plan.row_dims)))
        v.append(P())
      else:
        v_row.append(P())
        v_col.append(P())
        v.append(P(*a))
      m.append(P(*a) if self.momentum is not None else P())
    unflat = lambda xs: jax.tree.unflatten(treedef, xs)
    return AdafactorState(P(), P(), unflat(v_row), unflat(v_col), unflat(v), unflat(m))


def bind_param_axes(optimizer: Any, boxed_params: PyTree) -> Any:
  """Gives an `Adafactor` the logical axis names of `boxed_params` (flax-boxed, e.g. from
  `jax.eval_shape(model.init, ...)`); other transformations are returned unchanged."""
  if not isinstance(optimizer, Adafactor):
    return optimizer
  import flax.linen as nn
  specs = nn.get_partition_spec(boxed_params)
  axes = jax.tree.map(lambda s: tuple(s), specs, is_leaf=lambda x: isinstance(x, P))
  return optimizer.bind(axes)


def state_shardings(optimizer: Any, opt_state: PyTree, params: PyTree, param_shardings: PyTree,
                    mesh, rules=None) -> PyTree:
  """NamedShardings for an optimizer state. Adafactor's statistics follow the logical rules
  of the dims they keep; for other optax states, leaves shaped like their parameter follow
  its sharding and the rest are replicated."""
  rules = partitioning.LOGICAL_AXIS_RULES if rules is None else rules
  rep = NamedSharding(mesh, P())
  if isinstance(optimizer, Adafactor):
    specs = optimizer.state_logical_specs(params)
    return jax.tree.map(lambda s: NamedSharding(mesh, partitioning.logical_to_mesh_spec(s, rules)), specs,
                        is_leaf=lambda x: isinstance(x, P))

  def leaf_sharding(leaf, param, sharding):
    return sharding if getattr(leaf, "shape", None) == param.shape else rep

  return optax.tree_map_params(optimizer, leaf_sharding, opt_state, params, param_shardings,
                               transform_non_params=lambda _: rep,
                               is_leaf=lambda x: isinstance(x, NamedSharding))


def make_optimizer(cfg: OptimizerConfig, total_steps: int) -> tuple[Adafactor, optax.Schedule]:
  """Adafactor (not yet bound to parameter names: `Trainer` binds it) and its schedule."""
  schedule = learning_rate_schedule(cfg, total_steps)
  rules = dict(LOGICAL_FACTOR_RULES)
  rules.update({k: _factor_dim(v) for k, v in cfg.factor_rules})
  settings = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(AdafactorSettings)}
  tx = Adafactor(learning_rate=schedule, rules=rules, **settings)
  return tx, schedule


def with_initial_step(state: AdafactorState | PyTree, initial_step: int | jax.Array) -> PyTree:
  """The state with its Adafactor step continuing from `initial_step` (other states unchanged)."""
  if isinstance(state, AdafactorState):
    return state._replace(initial_step=jnp.asarray(initial_step, jnp.int32))
  return state


def keep_key(dims) -> str:
  """The name of an accumulator by the dims it keeps (`keep0`, `keep1_2`): how `with_moments`
  and `convert.t5x` pass second-moment statistics between factorings."""
  return "keep" + "_".join(str(d) for d in dims)


def with_moments(optimizer: Any, state: PyTree, params: PyTree, moments: Mapping, place: Callable
                 ) -> tuple[PyTree, int, list[str]]:
  """(state, parameters carried, parameters not carried): Adafactor's second-moment
  statistics taken from `moments` ({unscanned parameter path: {keep key: array}}, the form
  `flan_jax.checkpointing.t5x` reads T5X's `param_states` into) wherever they are exactly the
  accumulators this optimizer's factoring keeps: v_row keeps the dims that are not column
  dims, v_col those that are not row dims, an unfactored v all of them; a scanned stack takes
  layer i from `layers_i`. Any other parameter keeps its fresh (zero) statistics.
  `place(array, like)` puts an array where the state's leaf `like` is."""
  if not isinstance(state, AdafactorState) or not isinstance(optimizer, Adafactor):
    return state, 0, ["(all: the optimizer is not Adafactor)"]
  plans = optimizer.plans(params)
  flat, treedef = jax.tree_util.tree_flatten_with_path(params)
  plan_leaves = treedef.flatten_up_to(plans)
  fields = {name: treedef.flatten_up_to(getattr(state, name)) for name in ("v_row", "v_col", "v")}
  carried, missed = 0, []
  for i, ((path, x), plan) in enumerate(zip(flat, plan_leaves)):
    keys = tuple(str(getattr(k, "key", getattr(k, "name", k))) for k in path)
    dims = tuple(range(len(x.shape)))
    wanted = ({"v_row": tuple(d for d in dims if d not in plan.col_dims),
               "v_col": tuple(d for d in dims if d not in plan.row_dims)} if plan.factored else {"v": dims})
    found = {}
    for name, keep in wanted.items():
      if "layers" in keys:  # a scanned stack: [layers, ...], the layer dim kept (BATCH)
        at = keys.index("layers")
        n = x.shape[0]
        if 0 not in keep:
          break
        inner = keep_key([d - 1 for d in keep if d])
        parts = [moments.get(keys[:at] + (f"layers_{j}",) + keys[at + 1:], {}).get(inner) for j in range(n)]
        if any(p is None for p in parts):
          break
        found[name] = np.stack(parts)
      else:
        got = moments.get(keys, {}).get(keep_key(keep))
        if got is None:
          break
        found[name] = got
    like = {name: fields[name][i] for name in wanted}
    if len(found) == len(wanted) and all(tuple(found[n].shape) == tuple(like[n].shape) for n in wanted):
      for name in wanted:
        fields[name][i] = place(found[name], like[name])
      carried += 1
    else:
      missed.append("/".join(keys))
  unflat = lambda xs: jax.tree.unflatten(treedef, xs)
  state = state._replace(v_row=unflat(fields["v_row"]), v_col=unflat(fields["v_col"]), v=unflat(fields["v"]))
  return state, carried, missed


def adafactor_step(state: PyTree) -> int | None:
  """The Adafactor step an optimizer state is at (initial step + updates), or None."""
  if isinstance(state, AdafactorState):
    return int(state.initial_step) + int(state.count)
  return None
