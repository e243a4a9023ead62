"""Speed plumbing: the benchmarks' accelerator path (run at a tiny size on CPU, importing neither seqio
nor TensorFlow), the persistent compilation cache, the CPU memory setting of the entry points."""
import io
import os
import pathlib
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from flan_jax.runtime import compile_cache, host_memory
from tests import helpers

REPO = pathlib.Path(__file__).resolve().parents[1]
FORBIDDEN = ("seqio", "tensorflow", "tensorflow_datasets")

# Runs benchmark scripts as `python benchmarks/X.py ARGS` would (one process, so the imports are paid once),
# then lists what they imported.
_RUN_SCRIPTS = """
import runpy, sys
sys.path.insert(0, {bench!r})
for script, args in {runs!r}:
  sys.argv = [script, *args]
  try:
    runpy.run_path(script, run_name="__main__")
  except SystemExit as e:
    assert not e.code, e.code
  print("END OF", script, flush=True)
print("IMPORTED", sorted({{m.split(".")[0] for m in sys.modules}}))
"""


@pytest.mark.slow
def test_benchmark_presets_run_without_seqio_or_tensorflow():
  """The accelerator command's path (--preset, bf16) at a tiny size on CPU, with only the stock GPU
  image's packages: train and decode benchmarks."""
  train = ("--preset", "tiny", "--dtype", "bf16", "--steps", "1", "--rounds", "1", "--warmup", "1", "--threads", "1",
           "--skip_flops")
  decode = ("--preset", "tiny", "--dtype", "bf16", "--rounds", "1")
  runs = [(str(REPO / "benchmarks" / name), list(args))
          for name, args in (("train_throughput.py", train), ("decode_throughput.py", decode))]
  code = _RUN_SCRIPTS.format(bench=str(REPO / "benchmarks"), runs=runs)
  run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd="/",
                       env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
  train_out, decode_out = run.stdout.split("END OF")[:2]
  assert "d_model 64, d_ff 128, 2+2 layers" in train_out and "batch 2 x (32 in + 8 out)" in train_out
  assert "; bf16;" in train_out
  for name in ("flan_jax", "transformers"):
    line = next(line for line in train_out.splitlines() if line.startswith(name + " "))
    assert float(line.split()[1].replace(",", "")) > 0, line
  assert "ratio flan_jax / transformers:" in train_out
  assert "batch 2 x 32 prompt tokens, 8 new tokens" in decode_out and "ratio flan_jax / transformers:" in decode_out
  imported = set(eval(run.stdout.rsplit("IMPORTED", 1)[1]))  # a sorted list literal the script printed
  assert {"jax", "flax", "optax", "torch", "transformers", "flan_jax"} <= imported
  assert not imported & set(FORBIDDEN), sorted(imported & set(FORBIDDEN))


def test_accelerator_presets_are_the_t5_v1_1_gin_sizes():
  sys.path.insert(0, str(REPO / "benchmarks"))
  try:
    import presets
  finally:
    sys.path.remove(str(REPO / "benchmarks"))
  import gin
  from flan_jax.runtime import gin_utils
  from flan_jax.models import t5  # noqa: F401  (registers T5Config)
  for size in ("base", "large", "xl"):
    gin.clear_config()
    try:
      gin_utils.parse([f"gin/models/t5_1_1/{size}.gin"], [], finalize=False)
      cfg = gin.query_parameter("%MODEL_CONFIG").scoped_configurable_fn()
    finally:
      gin.clear_config()
    p = presets.PRESETS[f"t5_{size}"]
    assert p.flan_jax_config(cfg.dtype) == cfg, size


@pytest.mark.slow
def test_compilation_cache_stores_a_program_then_a_fresh_compile_loads_it(tmp_path, monkeypatch):
  lines = []
  monkeypatch.delenv(compile_cache.ENV, raising=False)
  directory = compile_cache.enable(str(tmp_path / "cache"), min_compile_time_secs=0.0, say=lines.append)
  try:
    assert directory == str(tmp_path / "cache")
    batch = helpers.random_encdec_batch()

    def one_step():
      tr = helpers.make_trainer(batch=batch, num_devices=1)
      state, metrics = tr.step(tr.init_state(0), {k: np.asarray(v) for k, v in batch.items()})
      return float(metrics["loss"])

    first = one_step()
    entries = [n for n in os.listdir(directory) if "train_step" in n]
    assert entries, os.listdir(directory)  # the step was written to the cache
    assert any("jit__train_step compiled in" in line and "(miss)" in line for line in lines), lines
    assert "jit__train_step" not in compile_cache.events().hits
    jax.clear_caches()  # as a new process: nothing compiled in memory
    second = one_step()
    assert "jit__train_step" in compile_cache.events().hits
    assert any(line.startswith("compilation cache: jit__train_step loaded from") and "(hit;" in line
               for line in lines), lines
    assert second == first  # the loaded program computes what the compiled one did
  finally:
    compile_cache.enable(enabled=False)
    jax.config.update("jax_compilation_cache_dir", None)
    compile_cache._events = None  # pylint: disable=protected-access


def test_compilation_cache_off_switch_and_environment_override(tmp_path, monkeypatch):
  try:
    monkeypatch.setenv(compile_cache.ENV, "off")
    assert compile_cache.enable(str(tmp_path / "gin_dir")) is None
    assert not jax.config.jax_enable_compilation_cache
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "env_dir"))
    assert compile_cache.enable(str(tmp_path / "gin_dir"), say=lambda _: None) == str(tmp_path / "env_dir")
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "env_dir")
    monkeypatch.delenv(compile_cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.default_directory() == str(tmp_path / "xdg" / "flan_jax" / "jax_cache")
  finally:
    compile_cache.enable(enabled=False)
    jax.config.update("jax_compilation_cache_dir", None)
    compile_cache._events = None  # pylint: disable=protected-access


def test_freed_memory_is_kept_only_for_cpu_runs_and_can_be_turned_off():
  assert host_memory.runs_on_cpu({"JAX_PLATFORMS": "cpu"})
  assert not host_memory.runs_on_cpu({"JAX_PLATFORMS": "cuda,cpu"})
  assert not host_memory.retain_freed_memory_on_cpu({"JAX_PLATFORMS": "tpu"})
  assert not host_memory.retain_freed_memory_on_cpu({"JAX_PLATFORMS": "cpu", host_memory.ENV: "0"})
  # In a fresh process (mallopt shapes the whole process): applied where the C library is glibc.
  code = ("from flan_jax.runtime import host_memory; import platform; "
          "print(host_memory.retain_freed_memory_on_cpu({'JAX_PLATFORMS': 'cpu'}), platform.libc_ver()[0])")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.split()
  assert out[0] == str(out[1] == "glibc"), out


def test_entry_points_set_up_the_process_in_one_place_in_order(tmp_path, monkeypatch):
  """Memory settings before distributed start-up (threads), the compilation cache once gin is
  parsed (it reads `compilation_cache.*`), then the command: for every gin entry point."""
  from flan_jax.runtime import gin_utils
  calls = []
  monkeypatch.setattr(host_memory, "retain_freed_memory_on_cpu", lambda: calls.append("memory"))
  monkeypatch.setattr(compile_cache, "enable", lambda: calls.append("cache"))
  config = tmp_path / "empty.gin"
  config.write_text("# nothing bound\n")
  assert gin_utils.run_entry_point("x", [f"--gin_file={config}"], "X.gin", lambda: calls.append("command"),
                                   before_parse=lambda: calls.append("distributed")) == 0
  assert calls == ["memory", "distributed", "cache", "command"]
  calls.clear()
  gin_utils.set_up_process()  # generate's (no gin)
  assert calls == ["memory", "cache"]


def _counting_source(n=None, error=None):
  def open_at(position):
    for i in range(position, 10**9 if n is None else n):
      yield {"x": np.full((4, 3), i, np.int32)}
    if error is not None:
      raise error
  return open_at


def test_read_ahead_hands_out_kept_batches_then_the_source_and_keeps_what_it_read_ahead(tmp_path):
  from flan_jax.training import data
  kept = [{"x": np.full((4, 3), i, np.int32)} for i in (5, 6)]
  ahead = data.ReadAhead(_counting_source(), 5, depth=3, saved=kept, defer=True)
  try:
    got = [int(next(ahead)["x"][0, 0]) for _ in range(4)]  # the kept two, then the source from 7 on
    assert got == [5, 6, 7, 8]
    assert ahead.state() == {"batches_taken": 9}
    assert len(ahead.ahead()) <= 2  # held to 2 ahead until start()
    ahead.start()
    deadline = time.time() + 60
    while len(ahead.ahead()) < 3 and time.time() < deadline:
      time.sleep(0.01)
    later = ahead.ahead()
    assert [int(b["x"][0, 0]) for b in later] == [9, 10, 11]  # the next ones, up to depth
  finally:
    ahead.close()
  failing = data.ReadAhead(_counting_source(n=1, error=ValueError("row 7 of task t is malformed")), 0, depth=2)
  next(failing)
  with pytest.raises(ValueError, match="row 7 of task t"):  # the pipeline's own error, in the consumer
    next(failing)
  failing.close()

  stream = {"mixture_or_task_name": "t", "task_feature_lengths": {"inputs": 3}, "batch_size": 8}
  data.save_lookahead(str(tmp_path), 9, later, stream, process_index=0)
  loaded = data.load_lookahead(str(tmp_path), stream, process_index=0)
  assert loaded.position == 9 and len(loaded.batches) == len(later)
  np.testing.assert_array_equal(loaded.batches[0]["x"], later[0]["x"])
  assert loaded.global_shapes(8)["x"].shape == (8, 3) and loaded.global_shapes(8)["x"].dtype == np.int32
  assert data.load_lookahead(str(tmp_path), dict(stream, batch_size=16), process_index=0) is None  # another stream
  assert data.load_lookahead(str(tmp_path), stream, process_index=1) is None  # another process's
  (tmp_path / "input_lookahead.0.npz").write_bytes(b"not a zip")
  assert data.load_lookahead(str(tmp_path), stream, process_index=0) is None


@pytest.mark.slow
def test_a_resumed_run_trains_first_on_the_kept_read_ahead_with_unchanged_numbers(tmp_path, monkeypatch):
  """A run cut at step 2 and resumed (reading ahead) matches one run of 4 steps without read-ahead,
  and the resumed run's first batches are those kept beside its checkpoint."""
  import json
  from flan_jax.training import data, train
  args = ["--gin_file=gin/recipes/quickstart.gin", "--gin.MIXTURE_OR_TASK_NAME=embedded_arithmetic_zsopt",
          "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}", "--gin.BATCH_SIZE=8",
          "--gin.CHECKPOINT_PERIOD=2", "--gin.train.log_every=1"]
  kept_sizes = []

  class Spy(data.ReadAhead):
    def __init__(self, *a, saved=(), **kw):
      kept_sizes.append(len(saved))
      super().__init__(*a, saved=saved, **kw)

  monkeypatch.setattr(data, "ReadAhead", Spy)
  runs = {"no_read_ahead": ["--gin.TRAIN_STEPS=4", "--gin.train.input_lookahead=0"], "cut": ["--gin.TRAIN_STEPS=2"]}
  for name, extra in runs.items():
    assert train.main(args + [f"--gin.MODEL_DIR={tmp_path / name}"] + extra) == 0
  assert not (tmp_path / "no_read_ahead" / "input_lookahead.0.npz").exists()
  with np.load(tmp_path / "cut" / "input_lookahead.0.npz") as f:
    assert json.loads(str(f["__meta__"]))["position"] == 2 and f["encoder_input_tokens"].shape[1:] == (8, 64)
  assert train.main(args + [f"--gin.MODEL_DIR={tmp_path / 'cut'}", "--gin.TRAIN_STEPS=4"]) == 0
  assert kept_sizes[:2] == [0, 0] and kept_sizes[2] >= 2  # the resume started on its kept batches

  def metrics(name):
    rows = [json.loads(line) for line in (tmp_path / name / "train_metrics.jsonl").read_text().splitlines()]
    return {r["step"]: (r["loss"], r["accuracy"]) for r in rows}

  full = metrics("no_read_ahead")  # one run of 4 steps reading in the loop, as before read-ahead existed
  assert sorted(full) == [1, 2, 3, 4]
  assert metrics("cut") == full, (metrics("cut"), full)
