"""Compiles T5X's own Flan-T5 train step for a TPU slice with XLA:TPU (libtpu, no TPU) and
counts it with flan_jax's HLO counter, beside `flan-jax plan --compile` of the same recipe.

T5X is not on the package index; check it out at the commit these figures were made with:

    git clone https://github.com/google-research/t5x /tmp/t5x && git -C /tmp/t5x checkout cc342d4
    pip install --target /tmp/peer_site --no-deps cached_property jaxtyping fiddle wadler_lindig jestimator
    PYTHONPATH=/tmp/peer_site python benchmarks/peers/t5x_compile.py --t5x_dir /tmp/t5x \\
        --topology v4-128 --remat full --out /tmp/t5x_xxl.json

The program is T5X's: its `scalable_t5` network and T5.1.1 XXL gin file, its Adafactor
(`decay_rate=0.8`, factored), its `train_with_lr` partitioned as `trainer.Trainer` does, with
`PjitPartitioner(num_partitions=8)` and `standard_logical_axis_rules(parameter_partitioning_dims=2)`
(parameters split over data and model: flan_jax's fsdp x model). Batch 64 of 2048 + 512
packed tokens, dropout 0.05, bfloat16: the Flan-T5 fine-tuning recipe
(gin/recipes/flan_t5_xxl.gin). Shims, none of which changes the program: a stub for T5X's
`airio` import (its data path, unused here) and `jax.experimental.pjit.PartitionSpec`, which
`jestimator` still imports from there. Not run in CI (it needs the checkout and libtpu).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time
import types

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import count_hlo  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

GiB = 2.0 ** 30
SIZES = {"xxl": "t5x/examples/scalable_t5/t5_1_1/xxl.gin", "xl": "t5x/examples/scalable_t5/t5_1_1/xl.gin",
         "large": "t5x/examples/scalable_t5/t5_1_1/large.gin"}


def _shims() -> None:
  """What a current JAX needs for T5X at cc342d4 to import (see the module docstring)."""
  import jax.experimental.pjit as pjit_module
  if not hasattr(pjit_module, "PartitionSpec"):
    pjit_module.PartitionSpec = jax.sharding.PartitionSpec
  airio = types.ModuleType("airio")
  core = types.ModuleType("airio.core")
  for name in ("Task", "Mixture", "AirIODatasetIterator", "DatasetProviderBase"):
    setattr(core, name, type(name, (), {}))
  core.dataset_providers = types.SimpleNamespace(get_vocabularies=lambda *a, **k: None)
  airio.core = core
  sys.modules.setdefault("airio", airio)
  sys.modules.setdefault("airio.core", core)


def compile_t5x(t5x_dir: str, size: str, topology_name: str, remat: str, batch: int, inputs: int,
                targets: int, model_parallel: int) -> dict:
  sys.path.insert(0, t5x_dir)
  _shims()
  import gin
  from jax.experimental import mesh_utils
  from t5x import partitioning, trainer, utils

  from flan_jax.models import t5 as flan_t5
  from flan_jax.planning import compiled as flan_compiled
  from flan_jax.planning import hlo, topology, tpu
  from flan_jax.training import flops

  sl = topology.parse_compilable(topology_name)
  devices = tpu.topology_devices(sl)
  gin.clear_config()
  gin.parse_config_files_and_bindings(
      [str(pathlib.Path(t5x_dir) / SIZES[size])],
      ["DROPOUT_RATE = 0.05", f"network.T5Config.remat_policy = '{remat}'",
       # The vocabulary is never read while compiling; a local file keeps it off the network.
       f"seqio.SentencePieceVocabulary.sentencepiece_model_file = '{_local_spm()}'"],
      skip_unknown=False)
  model = gin.query_parameter("%MODEL").scoped_configurable_fn()

  class Partitioner(partitioning.PjitPartitioner):
    """T5X's partitioner on the slice's abstract devices (its own mesh asks jax.devices())."""

    @property
    def mesh(self):
      arr = mesh_utils.create_device_mesh((len(devices) // model_parallel, model_parallel), devices,
                                          allow_split_physical_axes=True)
      return jax.sharding.Mesh(arr, ("data", "model"))

  partitioner = Partitioner(num_partitions=model_parallel, logical_axis_rules=partitioning.standard_logical_axis_rules(
      activation_partitioning_dims=1, parameter_partitioning_dims=2))
  shapes = {"encoder_input_tokens": (batch, inputs), "encoder_segment_ids": (batch, inputs),
            "encoder_positions": (batch, inputs), "decoder_input_tokens": (batch, targets),
            "decoder_target_tokens": (batch, targets), "decoder_loss_weights": (batch, targets),
            "decoder_segment_ids": (batch, targets), "decoder_positions": (batch, targets)}
  types_ = {k: jnp.int32 for k in shapes}
  init = utils.TrainStateInitializer(optimizer_def=model.optimizer_def, init_fn=model.get_initial_variables,
                                     input_shapes=shapes, input_types=types_, partitioner=partitioner)
  state_axes = init.train_state_axes
  abstract_state = init.global_train_state_shape

  def train_step(state, batch_):
    return trainer.train_with_lr(state, batch_, learning_rate=jnp.asarray(5e-4, jnp.float32),
                                 dropout_rng=jax.random.fold_in(jax.random.PRNGKey(0), state.step), model=model,
                                 num_microbatches=None, data_partition_spec=partitioner.data_partition_spec)

  step = partitioner.partition(train_step, in_axis_resources=(state_axes, partitioner.data_partition_spec),
                               out_axis_resources=(state_axes, None), donate_argnums=(0,))
  abstract_batch = {k: jax.ShapeDtypeStruct(v, jnp.int32) for k, v in shapes.items()}
  t0 = time.perf_counter()
  with tpu.libtpu_environment(sl.name):
    lowered = step.lower(abstract_state, abstract_batch)
    exe = lowered.compile(compiler_options={"exec_time_optimization_effort":
                                            flan_compiled.COMPILE_EFFORT["full"]})
  seconds = time.perf_counter() - t0
  mem = exe.memory_analysis()
  stats = hlo.analyse(exe.as_text(), len(devices))
  flan_cfg = flan_t5.T5Config(**{k: getattr(model.module.config, k) for k in (
      "vocab_size", "emb_dim", "num_heads", "head_dim", "mlp_dim", "num_encoder_layers", "num_decoder_layers")},
      mlp_activations=tuple(model.module.config.mlp_activations))
  plan = flan_compiled.CompiledPlan(
      slice=sl, num_slices=1, mesh_shape={"data": 1, "fsdp": len(devices) // model_parallel, "model": model_parallel},
      peak=float(mem.peak_memory_in_bytes), arguments=float(mem.argument_size_in_bytes),
      outputs=float(mem.output_size_in_bytes), aliased=float(mem.alias_size_in_bytes),
      temp=float(mem.temp_size_in_bytes), code=float(mem.generated_code_size_in_bytes), stats=stats,
      cost_analysis_flops=0.0, model_flops=flops.train_step_flops(flan_cfg, batch, inputs, targets),
      compile_seconds=seconds)
  return count_hlo.summary("t5x", f"T5X cc342d4 scalable_t5 {size}, remat {remat}", plan)


def _local_spm() -> str:
  import seqio
  return str(pathlib.Path(seqio.__file__).parent / "test_data" / "sentencepiece" / "sentencepiece.model")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--t5x_dir", required=True, help="a checkout of google-research/t5x at cc342d4")
  p.add_argument("--size", default="xxl", choices=sorted(SIZES))
  p.add_argument("--topology", default="v4-128")
  p.add_argument("--remat", default="full", help="T5X's remat_policy: full, minimal, ...")
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--inputs", type=int, default=2048)
  p.add_argument("--targets", type=int, default=512)
  p.add_argument("--model_parallel", type=int, default=8)
  p.add_argument("--out", default=None, help="write the figures here as JSON")
  args = p.parse_args(argv)
  result = compile_t5x(args.t5x_dir, args.size, args.topology, args.remat, args.batch, args.inputs, args.targets,
                       args.model_parallel)
  count_hlo.write_figures(result, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
