"""Writes the T5X checkpoint fixtures under tests/fixtures/t5x/ with T5X's own code.

The tests of `flan-jax convert from-t5x` read checkpoints that T5X itself wrote, so that
the reader is checked against the format as T5X writes it, not as we understand it. This
script is run once, by hand, outside CI; its output is committed. It needs:

  * a checkout of T5X at commit cc342d4 (google-research/t5x, "internal change."):
        git clone https://github.com/google-research/t5x /tmp/t5x && git -C /tmp/t5x checkout cc342d4
  * four packages T5X imports that flan_jax does not install, into a separate folder so
    the project's environment stays as it is:
        pip install --no-deps --target /tmp/t5x_deps clu==0.0.12 jestimator==0.3.3 \\
            cached_property==2.0.1 tensorboard==2.21.0
  * this project's environment (jax, flax, optax, orbax, tensorstore, tensorflow, seqio).

    python scripts/make_t5x_fixture.py --t5x /tmp/t5x --deps /tmp/t5x_deps --out tests/fixtures/t5x

Two shims, both applied here at import time and touching no file: `airio` (imported by
`t5x.utils` for type annotations only; not on the package index at a version that installs
beside this jax) is a stand-in module, and jestimator 0.3.3 imports `PartitionSpec` from
`jax.experimental.pjit`, where current jax no longer has it (it is `jax.sharding.PartitionSpec`).

What it writes, for a tiny T5 v1.1 (gated GELU; 2 encoder layers, 1 decoder layer; 128 wide
with 2 heads of 64, so that T5X's Adafactor factors every 2-D kernel, attention included), trained two steps with T5X's Adafactor (T5 v1.1's settings: decay_rate
0.8, logical factor rules) on a fixed batch:

  unscanned/checkpoint_<step>/   t5x/examples/t5/network.py, parameters saved as float32
  scanned/checkpoint_<step>/     t5x/examples/scalable_t5/network.py (scan_layers, the layer
                                 axis at param_scan_axis=1), parameters saved as bfloat16
  <layout>/arrays.npz            every array of the train state as T5X holds it in memory after
                                 the save, flattened with '/' (target/..., state/param_states/...),
                                 and the step: what the tests compare the reader with
  <layout>/config.json           the network's T5Config
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import types

import numpy as np

CONFIG = dict(vocab_size=128, emb_dim=128, num_heads=2, num_encoder_layers=2, num_decoder_layers=1,
              head_dim=64, mlp_dim=128, mlp_activations=("gelu", "linear"), dropout_rate=0.0,
              logits_via_embedding=False)
STEPS = 2


def _shims() -> None:
  import jax
  import jax.experimental.pjit as pjit
  if not hasattr(pjit, "PartitionSpec"):
    pjit.PartitionSpec = jax.sharding.PartitionSpec
  airio = types.ModuleType("airio")
  core = types.ModuleType("airio.core")
  core.__getattr__ = lambda name: type(name, (), {})
  airio.core = core
  sys.modules.setdefault("airio", airio)
  sys.modules.setdefault("airio.core", core)


def _write(layout: str, out: str) -> None:
  import jax
  import jax.numpy as jnp
  from flax import traverse_util
  from t5x import adafactor, checkpoints, partitioning
  from t5x import train_state as train_state_lib
  if layout == "scanned":
    from t5x.examples.scalable_t5 import network
    config = network.T5Config(**CONFIG, dtype=jnp.float32, scan_layers=True, remat_policy="none")
    save_dtype = jnp.bfloat16
  else:
    from t5x.examples.t5 import network
    config = network.T5Config(**CONFIG, dtype=jnp.float32)
    save_dtype = np.float32
  module = network.Transformer(config)
  rng = np.random.default_rng(0)
  batch = dict(
      encoder_input_tokens=rng.integers(2, CONFIG["vocab_size"], (2, 12)).astype(np.int32),
      decoder_input_tokens=rng.integers(2, CONFIG["vocab_size"], (2, 6)).astype(np.int32),
      decoder_target_tokens=rng.integers(2, CONFIG["vocab_size"], (2, 6)).astype(np.int32))
  variables = module.init(jax.random.PRNGKey(0), batch["encoder_input_tokens"], batch["decoder_input_tokens"],
                          batch["decoder_target_tokens"], enable_dropout=False)
  optimizer = adafactor.Adafactor(decay_rate=0.8, step_offset=0,
                                  logical_factor_rules=adafactor.standard_logical_factor_rules())
  state = train_state_lib.FlaxOptimTrainState.create(optimizer, variables)

  def loss(params):
    logits = module.apply({"params": params}, batch["encoder_input_tokens"], batch["decoder_input_tokens"],
                          batch["decoder_target_tokens"], enable_dropout=False)
    logp = jax.nn.log_softmax(logits)
    return -jnp.take_along_axis(logp, batch["decoder_target_tokens"][..., None], -1).mean()

  for _ in range(STEPS):
    state = state.apply_gradient(jax.grad(loss)(state.params), learning_rate=1e-2)

  root = os.path.join(out, layout)
  shutil.rmtree(root, ignore_errors=True)
  partitioner = partitioning.PjitPartitioner(num_partitions=1)
  ckptr = checkpoints.Checkpointer(state, partitioner, root, save_dtype=save_dtype)
  ckptr.save(state)
  flat = traverse_util.flatten_dict(state.state_dict(), sep="/")
  arrays = {k: np.asarray(v) for k, v in flat.items() if v is not None and not isinstance(v, dict)}
  np.savez_compressed(os.path.join(root, "arrays.npz"), **arrays)
  fields = {k: v for k, v in CONFIG.items()}
  fields.update(network=network.__name__, save_dtype=np.dtype(save_dtype).name, step=int(state.step))
  with open(os.path.join(root, "config.json"), "w") as f:
    json.dump(fields, f, indent=2)
    f.write("\n")
  print(f"wrote {root}: step {int(state.step)}, {len(arrays)} arrays")


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--t5x", required=True, help="a checkout of google-research/t5x at cc342d4")
  parser.add_argument("--deps", required=True, help="the --target folder of clu, jestimator, cached_property, "
                      "tensorboard")
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "t5x"))
  args = parser.parse_args()
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  sys.path[:0] = [os.path.abspath(args.t5x), os.path.abspath(args.deps)]
  _shims()
  for layout in ("unscanned", "scanned"):
    _write(layout, os.path.abspath(args.out))
  return 0


if __name__ == "__main__":
  sys.exit(main())
