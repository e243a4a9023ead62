"""`flan-jax plan`: topologies, per-device memory of the paper's runs, specific errors."""
import math

import gin
import pytest

from flan_jax.planning import plan, plan_cli
from flan_jax.training import flops

PALM_540B = ["gin/recipes/flan_palm_540b.gin"]
GiB = 2 ** 30


@pytest.fixture(autouse=True)
def _clean_gin():
  yield
  gin.clear_config()


def _plan(files, topology, bindings=()):
  planner = plan.Planner(plan.recipe_from_gin(files, bindings))
  return planner, planner.plan(plan.parse_topology(topology))


@pytest.mark.parametrize("name,chips,devices,hbm_gib", [
    ("v4-512", 256, 256, 32), ("v5p-1024", 512, 512, 95), ("v5e-256", 256, 256, 16),
    ("v3-8", 4, 8, 16), ("h100x64", 64, 64, 80)])
def test_topologies(name, chips, devices, hbm_gib):
  t = plan.parse_topology(name)
  assert (t.name, t.chips, t.num_devices, t.hbm_bytes_per_device / GiB) == (name, chips, devices, hbm_gib)


def test_unknown_topology_is_explained():
  with pytest.raises(ValueError, match="v4-512"):
    plan.parse_topology("tpu-512")
  with pytest.raises(ValueError, match="TensorCores"):
    plan.parse_topology("v4-7")


def test_recipe_numbers_come_from_gin():
  r = plan.recipe_from_gin(PALM_540B)
  assert (r.batch_size, r.input_length, r.target_length, r.train_steps) == (32, 0, 2560, 21000)
  assert r.model_config.num_layers == 118 and r.model_config.dropout_rate == 0.1
  assert r.mesh_config.model_parallel == 16 and r.mesh_config.fsdp
  assert r.optimizer_config.learning_rate == 1e-3


def test_palm_540b_fits_the_papers_512_chips():
  _, p = _plan(PALM_540B, "v4-1024")  # 512 TPU v4 chips, as in the paper
  assert p.mesh_shape == {"data": 1, "fsdp": 32, "model": 16}
  assert p.fits, plan.format_plan(p)
  # Parameters are fully sharded: per-device float32 bytes x devices = 4 bytes x 540B,
  # plus the single multi-query K/V head (1.1B parameters), split by fsdp but copied on
  # each of the 16 model shards: +15 x 1.1B / 540B = +3.1%.
  n = flops.param_count(p.recipe.model_config)
  kv = 118 * 2 * 18432 * 256
  assert p.params * 512 / 4 == pytest.approx(n + 15 * kv, rel=1e-3)
  assert p.gradients == p.params
  # Adafactor factored moments are tiny next to the parameters even replicated.
  assert p.optimizer < 0.3 * p.params
  # remat='full' keeps one [tokens, D] bf16 carry per layer, sharded over the 16 model shards
  # as well (ModelConfig.shard_residual): 118 x 2560 x 18432 x 2 bytes / 16. The flash
  # kernels (TPU's attention) keep no [2560, 2560] mask beside the layers.
  assert p.activations == pytest.approx(118 * 2560 * 18432 * 2 / 16, rel=0.01)


def test_palm_540b_does_not_fit_small_slices(capsys):
  _, tiny_slice = _plan(PALM_540B, "v4-8")
  assert not tiny_slice.fits and tiny_slice.total - tiny_slice.hbm > 1000 * GiB
  assert any("does not divide 4 devices" in n for n in tiny_slice.notes)
  # Half the paper's chips: fp32 parameters and gradients (16 GiB) and two sequences per data
  # shard fit the recipe's 16-way tensor x 16-way FSDP mesh only because the saved residual
  # stream is split over the tensor axis too (XLA:TPU: 22.81 GiB, docs/plans.md).
  _, half = _plan(PALM_540B, "v4-512")
  assert half.fits and half.total > 16 * GiB

  assert plan_cli.main(["--gin_file=" + PALM_540B[0], "--topology=v4-8"]) == 1
  out = capsys.readouterr().out
  last = out.strip().splitlines()[-1]
  assert last.startswith("DOES NOT FIT on v4-8:") and last.endswith("GiB over per device")
  over_gib = float(last.split(":")[1].split("GiB")[0])
  assert over_gib == pytest.approx((tiny_slice.total - tiny_slice.hbm) / GiB, abs=0.01)
  assert "smallest   v4-512 fits" in out


def test_main_reports_fit(capsys):
  assert plan_cli.main(["--gin_file=" + PALM_540B[0]]) == 0  # the recipe's TOPOLOGY: v4-1024
  out = capsys.readouterr().out
  assert out.strip().splitlines()[-1].startswith("FITS on v4-1024 with")
  for section in ("mesh       data=1 x fsdp=32 x model=16", "parameters", "optimizer state", "gradients",
                  "activations saved", "s/step", "21000 steps"):
    assert section in out


def test_flan_t5_xxl_fits_a_v4_slice():
  files = ["gin/recipes/flan_t5_xxl.gin"]
  bindings = ["REMAT_POLICY = 'full'", "MODEL_PARALLEL = 8", "BATCH_SIZE = 64",
              "TASK_FEATURE_LENGTHS = {'inputs': 2048, 'targets': 512}"]
  planner, p = _plan(files, "v4-64", bindings)
  assert p.mesh_shape == {"data": 1, "fsdp": 4, "model": 8}
  assert p.fits, plan.format_plan(p)
  assert plan.smallest_fitting(planner, p.topology, 0.5).topology.size <= 64


def test_non_divisible_dimension_names_parameter_and_axis():
  with pytest.raises(ValueError) as e:
    _plan(["gin/recipes/flan_palm_8b.gin"], "v4-64", ["PaLMConfig.num_heads = 12", "MODEL_PARALLEL = 8"])
  msg = str(e.value)
  assert "mesh axis model=8" in msg and "dimension 12" in msg and "attention" in msg, msg


def test_batch_that_does_not_split_over_data_parallel_is_explained():
  with pytest.raises(ValueError, match=r"BATCH_SIZE=32 .* data-parallel size 64"):
    _plan(PALM_540B, "v4-2048")  # 1024 chips / 16-way model = 64 data shards > 32 sequences


def test_remat_policy_orders_saved_activations():
  files = ["gin/recipes/flan_palm_8b.gin"]
  for kernel in ("xla", "auto"):
    saved = {}
    for policy in ("full", "dots_with_no_batch_dims", "dots", "none"):
      bindings = [f"REMAT_POLICY = '{policy}'", f"PaLMConfig.attention_kernel = '{kernel}'"]
      saved[policy] = _plan(files, "v4-64", bindings)[1].activations
    if kernel == "xla":
      assert saved["full"] < saved["dots_with_no_batch_dims"] < saved["dots"] < saved["none"]
    else:  # TPU's flash kernels: the batched (score) matmuls are inside the kernel, which no dots policy saves
      assert saved["full"] < saved["dots_with_no_batch_dims"] == saved["dots"] < saved["none"]


def test_more_data_shards_less_activation_memory_and_microbatches_double_gradients():
  files = ["gin/recipes/flan_palm_8b.gin"]
  _, small = _plan(files, "v4-64")
  _, big = _plan(files, "v4-128")
  assert big.activations == pytest.approx(small.activations / 2, rel=1e-6)
  assert big.params == pytest.approx(small.params / 2, rel=0.02)
  _, micro = _plan(files, "v4-64", ["NUM_MICROBATCHES = 2"])
  assert micro.gradients == 2 * micro.params
  assert micro.activations == pytest.approx(small.activations / 2, rel=1e-6)


def test_unsharded_parameter_bytes_are_exact():
  _, p = _plan(["gin/models/palm/tiny.gin"], "h100x1",
               ["BATCH_SIZE = 2", "TASK_FEATURE_LENGTHS = {'inputs': 8, 'targets': 8}"])
  assert p.params == 4 * flops.param_count(p.recipe.model_config)
  assert math.isclose(p.step_seconds, p.step_flops / (989e12 * 0.5))


def test_main_without_a_topology_anywhere_says_how_to_give_one(capsys):
  with pytest.raises(SystemExit) as e:
    plan_cli.main(["--gin_file=gin/recipes/quickstart.gin"])
  assert e.value.code == 2
  assert capsys.readouterr().err.strip().endswith(
      "flan-jax plan: error: gin/recipes/quickstart.gin sets no TOPOLOGY macro; give --topology=v4-512 "
      "(or h100x64, v5p-1024, ...)")
