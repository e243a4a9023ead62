"""Parameter counts of the gin model files against the published Flan-T5 sizes (no allocation)."""
import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.runtime import gin_utils
from flan_jax.models import t5

PUBLISHED = {"small": 77e6, "base": 248e6, "large": 783e6, "xl": 2.85e9, "xxl": 11.1e9}


def count_params(cfg) -> int:
  tokens = jnp.ones((1, 8), jnp.int32)
  shapes = jax.eval_shape(lambda: t5.Transformer(cfg).init(jax.random.key(0), tokens, tokens))
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(shapes)))


def config_from_gin(path: str) -> t5.T5Config:
  gin.clear_config()
  try:
    gin_utils.parse([path], [], finalize=False)
    return gin.query_parameter("MODEL_CONFIG/gin.macro.value").scoped_configurable_fn()
  finally:
    gin.clear_config()


@pytest.mark.parametrize("size", sorted(PUBLISHED))
def test_t5_sizes_match_published(size):
  cfg = config_from_gin(f"gin/models/t5_1_1/{size}.gin")
  n = count_params(cfg)
  assert abs(n - PUBLISHED[size]) / PUBLISHED[size] < 0.01, f"{size}: {n:,} vs {PUBLISHED[size]:,.0f}"


def test_every_parameter_has_logical_axes():
  import flax.linen as nn
  tokens = jnp.ones((1, 8), jnp.int32)
  boxed = jax.eval_shape(lambda: t5.Transformer(t5.T5Config(num_encoder_layers=1, num_decoder_layers=1))
                         .init(jax.random.key(0), tokens, tokens))
  leaves = jax.tree.leaves(boxed["params"], is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
  assert leaves and all(isinstance(x, nn.LogicallyPartitioned) for x in leaves)
