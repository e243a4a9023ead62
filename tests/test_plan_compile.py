"""`flan-jax plan --compile`: the trainer's own step compiled by XLA:TPU (libtpu) for TPU slices.

The compile tests need libtpu (`pip install -e ".[tpu]"`) and are skipped without it;
the slice names, the HLO reader and the one-code-path check run anywhere.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.planning import plan, plan_cli
from flan_jax.training import flops
from flan_jax.core import optim, partitioning
from flan_jax.training import trainer
from flan_jax.training import config as config_lib
from flan_jax.runtime import gin_utils
from flan_jax.models import build_model
from flan_jax.planning import compiled, hlo, search, tpu
from flan_jax.planning import topology as tpu_topology

needs_libtpu = pytest.mark.skipif(not tpu.have_libtpu(), reason='libtpu not installed: pip install -e ".[tpu]"')
GiB = 2 ** 30

TINY_T5 = ["gin/models/t5_1_1/tiny.gin"]
TINY_PALM = ["gin/models/palm/tiny.gin"]
SMALL_RUN = ["BATCH_SIZE = 8", "TASK_FEATURE_LENGTHS = {'inputs': 32, 'targets': 16}", "MeshConfig.fsdp = True",
             "MeshConfig.model_parallel = 2", "REMAT_POLICY = 'full'"]


@pytest.mark.parametrize("name,topology,chips", [
    ("v4-8", "v4:2x2x1", 4), ("v4-1024", "v4:8x8x8", 512), ("v4-512", "v4:4x8x8", 256),
    ("v4-64", "v4:2x4x4", 32), ("v5p-128", "v5:4x4x4", 64), ("v5e-8", "v5e:2x4", 8), ("v5e-256", "v5e:16x16", 256),
    ("v6e-16", "v6e:4x4", 16)])
def test_slice_names_follow_cloud_tpu(name, topology, chips):
  sl = tpu_topology.parse_compilable(name)
  assert (sl.topology_name, sl.chips) == (topology, chips)
  # One topology type: the analytic planner reads the same object the compiler gets.
  assert plan.parse_topology(name) == sl and type(sl) is plan.Topology


@pytest.mark.parametrize("bad", ["v3-8", "v4-12", "v4-7", "h100x8", "v5e-3"])
def test_unknown_slice_names_the_valid_ones(bad):
  with pytest.raises(ValueError) as e:
    tpu_topology.parse_compilable(bad)
  assert bad in str(e.value) and "v4-8" in str(e.value) and "v5e-1" in str(e.value) and "v5p-8" in str(e.value)


def test_abstract_batch_has_seqio_converter_features():
  import seqio
  r = plan.recipe_from_gin(TINY_T5, SMALL_RUN)
  want = seqio.EncDecFeatureConverter(pack=True).get_model_feature_lengths({"inputs": 32, "targets": 16})
  got = compiled.abstract_batch(r, "encdec")
  assert {k: v.shape for k, v in got.items()} == {k: (8, n) for k, n in want.items()}
  r = plan.recipe_from_gin(TINY_PALM, SMALL_RUN)
  want = seqio.PrefixLMFeatureConverter(pack=True).get_model_feature_lengths({"inputs": 32, "targets": 16})
  assert {k: v.shape for k, v in compiled.abstract_batch(r, "prefix_lm").items()} == {k: (8, n) for k, n in want.items()}


def test_hlo_reader_multiplies_loop_bodies():
  """A scanned stack of L matmuls: XLA's cost_analysis counts one; the reader counts L."""
  layers, m, k = 6, 64, 128

  def f(x, ws):
    return jax.lax.scan(lambda h, w: (jnp.tanh(h @ w), None), x, ws)[0]

  x, ws = jnp.ones((m, k)), jnp.ones((layers, k, k))
  c = jax.jit(f).lower(x, ws).compile()
  stats = hlo.analyse(c.as_text(), 1)
  assert stats.flops == pytest.approx(layers * 2 * m * k * k, rel=0.01)
  assert stats.loops == [(stats.loops[0][0], layers)]
  ca = c.cost_analysis()
  ca = ca[0] if isinstance(ca, (list, tuple)) else ca
  assert ca["flops"] < 0.5 * stats.flops  # the body once: why the reader exists
  # HBM traffic by source adds up to the total; the matmul inside the loop (read L times:
  # x and one [k, k] weight slice each) is named by the operation that made it.
  assert sum(stats.traffic_by_source.values()) == pytest.approx(stats.bytes_accessed)
  dots = {src: b for src, b in stats.traffic_by_source.items() if "dot_general" in src or "matmul" in src}
  assert dots and sum(dots.values()) >= layers * 4 * (m * k + k * k)


@pytest.mark.parametrize("binding", ["Z_LOSS = 1e-3", "train.z_loss = 1e-3"])
def test_compiled_step_is_the_trainers_own(binding):
  """One code path: plan --compile lowers `Trainer.train_step` itself; on CPU devices the
  program it lowers is the one a Trainer built as `flan_jax.training.train` builds it lowers, whether
  the loss is set through the recipe's macro or by binding `train.z_loss` directly."""
  bindings = SMALL_RUN + ["NUM_MICROBATCHES = 2", "MODEL_DIR = '/tmp/unused'", binding]
  r = plan.recipe_from_gin(TINY_PALM, bindings)
  assert r.loss == trainer.LossConfig(z_loss=1e-3)
  ours = compiled.build_trainer(r, jax.devices(), r.loss)
  # The trainer as `flan-jax train` builds it: from the run config its entry point reads.
  with gin_utils.parsed([plan.RUN_FILE, *TINY_PALM], bindings):
    run = config_lib.run_config()
  model, _ = build_model(run.model)
  tx, lr = optim.make_optimizer(run.optimizer, run.train_steps or 1)
  mesh = partitioning.make_mesh(run.partitioning)
  batch = {k: np.zeros(v.shape, np.int32) for k, v in compiled.abstract_batch(r, "prefix_lm").items()}
  theirs = trainer.Trainer(model, tx, mesh, {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()},
                           loss=run.loss, num_microbatches=run.num_microbatches, learning_rate_fn=lr)
  with partitioning.mesh_context(mesh):
    real = theirs.train_step.lower(theirs.abstract_state, trainer.global_batch(batch, theirs.batch_shardings))
  assert ours.lower_train_step().as_text() == real.as_text()
  default = trainer.Trainer(model, tx, mesh, {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()},
                            loss=trainer.LossConfig(), num_microbatches=2, learning_rate_fn=lr)
  with partitioning.mesh_context(mesh):  # the binding reaches the program: the default's differs
    other = default.train_step.lower(default.abstract_state, trainer.global_batch(batch, default.batch_shardings))
  assert other.as_text() != real.as_text()


def _compile(files, bindings, slice_name):
  r = plan.recipe_from_gin(files, bindings)
  return r, compiled.compile_recipe(r, tpu_topology.parse_compilable(slice_name), loss=r.loss)


@pytest.mark.slow
@needs_libtpu
@pytest.mark.parametrize("files,slice_name", [(TINY_T5, "v4-8"), (TINY_PALM, "v4-8"), (TINY_T5, "v5e-8"),
                                              (TINY_PALM, "v5e-8")])
def test_tiny_models_compile_for_tpu(files, slice_name, monkeypatch):
  lowered_by = []
  original = trainer.Trainer.lower_train_step
  monkeypatch.setattr(trainer.Trainer, "lower_train_step", lambda self: lowered_by.append(self) or original(self))
  scan = ["SCAN_LAYERS = True"]  # as the paper recipes
  r, c = _compile(files, SMALL_RUN + scan + ["VOCAB_SIZE = 512"], slice_name)
  assert len(lowered_by) == 1 and isinstance(lowered_by[0], trainer.Trainer)  # the trainer's own step
  sl = tpu_topology.parse_compilable(slice_name)
  assert c.num_devices == sl.chips and c.mesh_shape == {"data": 1, "fsdp": sl.chips // 2, "model": 2}
  assert c.fits and 0 < c.arguments <= c.peak < c.hbm == sl.hbm_gib_per_chip * GiB
  assert c.aliased > 0.9 * c.outputs - 1024  # the donated state is written in place
  # FLOPs read from the HLO, loops multiplied out, against flan_jax.training.flops: full remat
  # recomputes the layers' forward pass (x up to 4/3 on the layers), nothing else is extra.
  ratio = c.step_flops / flops.train_step_flops(r.model_config, 8, r.input_length, r.target_length)
  assert 1.0 < ratio < 1.45, ratio
  # The scanned layers, forward and backward (T5: encoder and decoder stacks, 2 layers each).
  assert [n for _, n in c.stats.loops].count(2) >= (4 if files == TINY_T5 else 2)
  # FSDP over 2 and tensor parallel over 2: weights are gathered and gradients reduced.
  assert c.stats.collectives["all-gather"].count > 0 and c.stats.collective_bytes > 0
  rl = c.roofline()
  assert rl["step"] == max(rl["compute"], rl["hbm"], rl["ici"]) > 0 and 0 < c.mfu < 1
  top = c.stats.top_traffic(5)
  assert sum(c.stats.traffic_by_source.values()) == pytest.approx(c.stats.bytes_accessed)
  # Named after the model's operations (layers, the attention kernels).
  assert len(top) == 5 and any("layers" in src or "flash_attention" in src for src, _ in top)
  assert c.stats.kernels > 0  # TPU runs attention in the Pallas kernels, priced by their estimates


@pytest.mark.slow
@needs_libtpu
def test_tpu_compiles_leave_the_persistent_compilation_cache_alone(tmp_path):
  """With JAX's persistent cache on (as `flan-jax train` turns it on), compiling for abstract TPU
  devices twice neither stores nor tries to load the TPU program (which cannot be loaded
  without a TPU client: jax would warn 'Error reading persistent compilation cache entry')."""
  import subprocess
  import sys
  script = (
      "import warnings; warnings.simplefilter('error')\n"
      "from flan_jax.runtime import compile_cache\nfrom flan_jax.planning import plan\n"
      "from flan_jax.planning import compiled, topology\n"
      f"compile_cache.enable({str(tmp_path / 'cache')!r}, min_compile_time_secs=0, say=print)\n"
      "import jax, pathlib; jax.jit(lambda x: x * 2 + 1)(1.0)  # a CPU program: jax now uses the cache\n"
      f"files = lambda: sorted(p.name for p in pathlib.Path({str(tmp_path / 'cache')!r}).rglob('*') if p.is_file())\n"
      "before = files()\n"
      f"r = plan.recipe_from_gin({TINY_PALM!r}, {SMALL_RUN + ['VOCAB_SIZE = 512']!r})\n"
      "for _ in range(2):\n"
      "  c = compiled.compile_recipe(r, topology.parse_compilable('v4-8'), loss=r.loss)\n"
      "assert files() == before, (before, files())\n"
      "jax.jit(lambda x: x * 3 - 1)(1.0)  # and uses it again afterwards\n"
      "assert len(files()) > len(before), (before, files())\n"
      "print('peak', c.peak)\n")
  out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "peak" in out.stdout and "error reading" not in out.stderr.lower(), out.stderr[-2000:]


@needs_libtpu
def test_oversized_model_is_refused_by_the_compiler(capsys):
  """A 2.1B-parameter embedding replicated on every v5e chip (16 GB): fp32 weights and
  gradients alone are 17 GB, so XLA:TPU refuses it, and the command exits 1."""
  argv = ["--gin_file=" + TINY_PALM[0], "--topology=v5e-8", "--compile", "--gin.VOCAB_SIZE=262144",
          "--gin.PaLMConfig.emb_dim=8192", "--gin.PaLMConfig.num_layers=1", "--gin.BATCH_SIZE=8",
          "--gin.TASK_FEATURE_LENGTHS={'inputs': 16, 'targets': 16}", "--gin.MeshConfig.fsdp=False"]
  assert plan_cli.main(argv) == 1
  out = capsys.readouterr().out
  assert "DOES NOT FIT on v5e-8: XLA:TPU refused the program" in out
  assert "memory" in out.split("XLA:TPU refused")[1].lower()
  assert "parameters (float32, sharded)" in out  # the analytic breakdown, to show what to change


def test_without_libtpu_compile_says_what_to_install(monkeypatch, capsys):
  monkeypatch.setattr(tpu, "have_libtpu", lambda: False)
  assert plan_cli.main(["--gin_file=" + TINY_PALM[0], "--topology=v4-8", "--compile"] +
                   ["--gin." + b.replace(" ", "") for b in SMALL_RUN]) == 2
  assert 'pip install -e ".[tpu]"' in capsys.readouterr().out


@pytest.mark.slow
@needs_libtpu
def test_search_returns_a_setting_the_compiler_accepts():
  bindings = ["BATCH_SIZE = 8", "TASK_FEATURE_LENGTHS = {'inputs': 32, 'targets': 16}"]
  cands, best = search.search(TINY_PALM, bindings, "v4-8", compile_top=1, say=lambda s: None)
  assert len(cands) > 10 and best is not None and best.compiled.fits
  assert {c.model_parallel for c in cands} == {1, 2, 4} and {c.microbatches for c in cands} >= {1, 2}
  text = search.format_search(cands, best, TINY_PALM)
  paste = text.splitlines()[-1]
  assert paste.startswith("paste:") and "--gin.MeshConfig.model_parallel=" in paste


@pytest.mark.slow
@needs_libtpu
def test_search_finds_a_flan_t5_xxl_setting_that_the_compiler_accepts_on_v4_64():
  """The paper recipe (11B, scanned stacks) on a slice half its paper
  one. The best analytic setting is compiled at full effort (about 2 minutes, 5 GB of host
  memory here) and must fit, with the estimate within 15% of the compiler's peak."""
  cands, best = search.search(["gin/recipes/flan_t5_xxl.gin"], [], "v4-64", compile_top=1, say=lambda s: None)
  assert best is not None and best.compiled.fits, [c.compile_error for c in cands if c.compile_error]
  assert best.compiled.num_devices == 32 and best.compiled.peak < best.compiled.hbm
  assert abs(best.analytic.total / best.compiled.peak - 1) < 0.15, (best.analytic.total / GiB,
                                                                   best.compiled.peak / GiB)
  paste = search.format_search(cands, best, ["gin/recipes/flan_t5_xxl.gin"]).splitlines()[-1]
  assert paste.startswith("paste:") and f"--gin.REMAT_POLICY={best.remat}" in paste


@pytest.mark.slow
@needs_libtpu
@pytest.mark.parametrize("files,bindings", [
    (TINY_T5, ["BATCH_SIZE = 16", "TASK_FEATURE_LENGTHS = {'inputs': 512, 'targets': 128}",
               "T5Config.attention_kernel = 'xla'"]),
    (TINY_T5, ["BATCH_SIZE = 16", "TASK_FEATURE_LENGTHS = {'inputs': 512, 'targets': 128}", "SCAN_LAYERS = True",
               "ACTIVATION_DTYPE = 'bfloat16'", "T5Config.attention_kernel = 'xla'"]),
    (TINY_PALM, ["BATCH_SIZE = 16", "TASK_FEATURE_LENGTHS = {'inputs': 512, 'targets': 512}", "SCAN_LAYERS = True",
                 "VOCAB_SIZE = 32768", "PaLMConfig.attention_kernel = 'xla'"])])
def test_analytic_plan_is_within_15_percent_of_the_compiled_peak(files, bindings):
  """The analytic planner, calibrated on XLA:TPU's peaks, against a fresh compile on v4-8.
  Tiny widths but real lengths, so activations and logits (what the calibration is about)
  are most of the memory: the T5 is mostly its layer phase, the decoder its loss phase.
  XLA attention, whose [B, H, L, S] buffers are what the attention terms count; the flash
  kernels' rows are checked on the paper recipes (tests/test_plans_table.py)."""
  run = ["MeshConfig.fsdp = True", "MeshConfig.model_parallel = 2", "REMAT_POLICY = 'full'"]
  r, c = _compile(files, bindings + run, "v4-8")
  p = plan.Planner(r).plan(plan.parse_topology("v4-8"))
  assert p.activations + p.transient > 0.8 * p.total  # the calibrated terms dominate
  assert abs(p.total / c.peak - 1) < 0.15, (p.total / GiB, c.peak / GiB)
