"""The T5 relative-position bias: T5X's gather-free lookup, built inside each layer.

A gather from the [H, buckets] table (and its scatter gradient) puts the heads axis
minor-most, [L*S, H], which XLA:TPU pads to 128 lanes: for 2048-token inputs that was
2 GiB per buffer on T5-small and made the Flan-T5 recipes miss their slices.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.planning import plan
from flan_jax.models import layers
from flan_jax.planning import compiled, tpu
from flan_jax.planning import topology as tpu_topology

GiB = 2 ** 30


@pytest.mark.parametrize("bidirectional", [True, False])
def test_relative_bias_is_the_table_lookup(bidirectional):
  """Bit-equal to indexing the table by T5's buckets, also for one decoding row."""
  h, n, max_distance, q, k = 3, 16, 40, 50, 50
  table = jax.random.normal(jax.random.key(1), (h, n), jnp.float32)
  rel = np.arange(k)[None, :] - np.arange(q)[:, None]
  buckets = layers.relative_position_bucket(rel, bidirectional, n, max_distance)
  want = np.asarray(table)[:, buckets][None]
  got = layers.relative_bias(table, q, k, bidirectional, max_distance)
  assert got.shape == (1, h, q, k) and got.dtype == jnp.float32
  np.testing.assert_array_equal(np.asarray(got), want)
  row = layers.relative_bias(table, 1, k, bidirectional, max_distance, query_offset=jnp.int32(17))
  np.testing.assert_array_equal(np.asarray(row), want[:, :, 17:18])


@pytest.mark.slow
@pytest.mark.skipif(not tpu.have_libtpu(), reason='libtpu not installed: pip install -e ".[tpu]"')
def test_long_inputs_keep_no_lane_padded_bias_buffer():
  """Tiny T5, 1024-token inputs, one sequence per v4 chip, remat full. The old gather
  layout alone took [1024*1024, 128] float32 = 512 MiB per chip (compiled peak 0.57 GiB);
  with the one-hot contraction the whole step peaks at 0.13 GiB."""
  r = plan.recipe_from_gin(["gin/models/t5_1_1/tiny.gin"], [
      "BATCH_SIZE = 4", "TASK_FEATURE_LENGTHS = {'inputs': 1024, 'targets': 64}", "REMAT_POLICY = 'full'"])
  c = compiled.compile_recipe(r, tpu_topology.parse_compilable("v4-8"), loss=r.loss,
                              effort="fast")
  bias_bytes = r.model_config.num_heads * 1024 * 1024 * 4  # one sequence's [H, S, S] float32
  assert c.peak < 0.25 * GiB, f"peak {c.peak / GiB:.3f} GiB; bias [H,S,S] is {bias_bytes / GiB:.3f} GiB"
