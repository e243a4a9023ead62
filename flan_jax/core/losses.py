"""Cross-entropy with z-loss and T5X's loss-normalising-factor options.

The normalising factor is folded into per-token weights *before* a batch is split
into microbatches, so that summing microbatch losses gives exactly the loss (and
gradient) of the whole batch.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Array = jax.Array

# T5X's names for the ways of dividing the summed token loss.
NORMALIZING_FACTORS = ("NUM_REAL_TARGET_TOKENS", "NUM_TOTAL_TARGET_TOKENS", "AVERAGE_PER_SEQUENCE")


def token_weights(loss_weights_BxL: Array, segment_ids_BxL: Array | None,
                  loss_normalizing_factor: float | str | None) -> Array:
  """Per-token weights w such that the batch loss is sum(token_loss * w).

  loss_normalizing_factor:
    None                      - plain sum over real target tokens (T5X's default);
    a number                  - sum divided by that constant (e.g. the Flan-T5 runs' 233472);
    'NUM_REAL_TARGET_TOKENS'  - mean over real target tokens;
    'NUM_TOTAL_TARGET_TOKENS' - sum divided by batch x target length;
    'AVERAGE_PER_SEQUENCE'    - each packed example's mean, averaged over examples.
  """
  w = loss_weights_BxL.astype(jnp.float32)
  if loss_normalizing_factor is None:
    return w
  if isinstance(loss_normalizing_factor, (int, float)):
    return w / jnp.float32(loss_normalizing_factor)
  if loss_normalizing_factor == "NUM_REAL_TARGET_TOKENS":
    return w / jnp.maximum(jnp.sum(w), 1.0)
  if loss_normalizing_factor == "NUM_TOTAL_TARGET_TOKENS":
    return w / jnp.float32(w.size)
  if loss_normalizing_factor == "AVERAGE_PER_SEQUENCE":
    seg = (w > 0).astype(jnp.int32) if segment_ids_BxL is None else segment_ids_BxL
    # Tokens of each (row, segment): compare every position's segment with every other's.
    same_BxLxL = (seg[:, :, None] == seg[:, None, :]) & (seg[:, None, :] > 0)
    tokens_in_segment_BxL = jnp.einsum("blm,bm->bl", same_BxLxL.astype(jnp.float32), w)
    per_token = jnp.where(w > 0, w / jnp.maximum(tokens_in_segment_BxL, 1.0), 0.0)
    num_sequences = jnp.maximum(jnp.sum(per_token), 1.0)
    return per_token / num_sequences
  raise ValueError(f"loss_normalizing_factor={loss_normalizing_factor!r}; use None, a number or one of "
                   f"{NORMALIZING_FACTORS}")


def cross_entropy_with_z_loss(logits_BxLxV: Array, targets_BxL: Array, weights_BxL: Array,
                              z_loss: float = 1e-4, label_smoothing: float = 0.0) -> tuple[Array, Array]:
  """Weighted sums (cross_entropy + z_loss, z_loss) over tokens.

  z_loss * log(Z)^2 keeps the softmax normaliser near 1 (PaLM, T5X); it is included
  in the first value and reported separately in the second. Label smoothing is
  t5x/losses.py's: soft targets 1 - ls on the target and ls / (V - 1) elsewhere, minus
  the soft targets' own entropy (the normalising constant), so a perfect model scores 0.
  """
  logits = logits_BxLxV.astype(jnp.float32)
  vocab = logits.shape[-1]
  log_z_BxL = jax.nn.logsumexp(logits, axis=-1)
  target_logit_BxL = jnp.take_along_axis(logits, targets_BxL[..., None], axis=-1)[..., 0]
  nll_BxL = log_z_BxL - target_logit_BxL
  if label_smoothing:
    confidence = 1.0 - label_smoothing
    low = label_smoothing / (vocab - 1)
    normalizing_constant = -(confidence * math.log(confidence) + (vocab - 1) * low * math.log(low + 1e-20))
    soft_logit_BxL = (confidence - low) * target_logit_BxL + low * jnp.sum(logits, axis=-1)
    nll_BxL = log_z_BxL - soft_logit_BxL - normalizing_constant
  z_BxL = z_loss * jnp.square(log_z_BxL)
  return jnp.sum((nll_BxL + z_BxL) * weights_BxL), jnp.sum(z_BxL * weights_BxL)
