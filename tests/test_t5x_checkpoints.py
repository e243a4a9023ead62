"""T5X checkpoints: read the ones T5X's own code wrote, convert, continue Adafactor, refuse bad input.

The fixtures under tests/fixtures/t5x/ were written by T5X itself (its `checkpoints.Checkpointer`,
t5x at commit cc342d4) by scripts/make_t5x_fixture.py, which says how to run it: a tiny T5 v1.1
trained two steps with T5X's Adafactor, once with T5X's T5 network (unscanned, float32) and once
with its scalable T5 network (scanned stacks, layer axis 1, a relative-position table per layer,
saved as bfloat16). Beside each, `arrays.npz` holds every array of T5X's train state as T5X
held it in memory after saving: the reference every read is compared with, bit for bit.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import flax.linen as nn
import jax
import ml_dtypes
import numpy as np
import pytest

from flan_jax.checkpointing import convert_cli
from flan_jax.checkpointing import checkpoints
from flan_jax.core import optim
from flan_jax.checkpointing import t5x
from flan_jax.models import record, t5
from tests.test_t5x_parity import ref_plan, ref_update

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "t5x"
LAYOUTS = ("unscanned", "scanned")


def _reference(layout: str) -> dict[str, np.ndarray]:
  with np.load(FIXTURES / layout / "arrays.npz") as z:
    return {k: z[k] for k in z.files}


def _fixture_config(layout: str) -> dict:
  return json.loads((FIXTURES / layout / "config.json").read_text())


def _expected_params(layout: str) -> dict[str, np.ndarray]:
  """T5X's parameters in flan_jax's unscanned layout, mapped here independently of the reader:
  T5X's 2-D attention kernels [D, H*K] / [H*K, D] are our [D, H, K] / [H, K, D]; a scanned
  stack `encoder/encoder/...` with the layer axis at 1 is our `encoder/layers_i/...`."""
  cfg, ref = _fixture_config(layout), _reference(layout)
  h, k = cfg["num_heads"], cfg["head_dim"]
  dtype = np.dtype(ml_dtypes.bfloat16) if cfg["save_dtype"] == "bfloat16" else np.dtype(np.float32)
  out = {}
  for name, x in ref.items():
    if not name.startswith("target/"):
      continue
    parts = name.split("/")[1:]
    layers = [(parts, x)]
    if parts[0] in ("encoder", "decoder") and parts[1] == parts[0]:
      layers = [([parts[0], f"layers_{i}"] + parts[2:], np.take(x, i, axis=1)) for i in range(x.shape[1])]
    for p, a in layers:
      if p[-2] in ("query", "key", "value") and a.ndim == 2:
        a = a.reshape(a.shape[0], h, k)
      elif p[-2] == "out" and a.ndim == 2:
        a = a.reshape(h, k, a.shape[-1])
      out["/".join(p)] = a.astype(dtype)
  return out


def _flat(tree) -> dict[str, np.ndarray]:
  return {jax.tree_util.keystr(k, simple=True, separator="/"): np.asarray(v)
          for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  out = {}
  for layout in LAYOUTS:
    dst = tmp_path_factory.mktemp("converted") / layout
    convert_cli.from_t5x(str(FIXTURES / layout), str(dst), say=lambda m: None)
    out[layout] = dst
  return out


@pytest.mark.parametrize("layout", LAYOUTS)
def test_from_t5x_parameters_are_bit_equal_to_what_t5x_saved(converted, layout):
  want = _expected_params(layout)
  got = _flat(checkpoints.load_params(str(converted[layout])))
  assert sorted(got) == sorted(want)
  for name, w in want.items():
    assert got[name].dtype == w.dtype, name
    assert got[name].shape == w.shape, name
    assert got[name].tobytes() == w.tobytes(), f"{name} differs from the array T5X saved"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_from_t5x_records_the_model_the_step_and_no_vocabulary(converted, layout):
  cfg = _fixture_config(layout)
  rec = record.read_record(str(converted[layout]))
  assert rec.step == cfg["step"] == 2
  assert rec.vocabulary_file is None
  model = rec.config
  assert (model.vocab_size, model.emb_dim, model.num_heads, model.head_dim, model.mlp_dim) == (
      cfg["vocab_size"], cfg["emb_dim"], cfg["num_heads"], cfg["head_dim"], cfg["mlp_dim"])
  assert (model.num_encoder_layers, model.num_decoder_layers) == (2, 1)
  assert model.mlp_activations == ("gelu", "linear") and not model.logits_via_embedding
  assert model.relpos_per_layer == (layout == "scanned")  # scalable_t5 keeps a table per layer
  data = json.loads((converted[layout] / record.RECORD_FILE).read_text())
  assert data["source"]["format"] == "t5x" and "T5X checkpoints carry none" in data["note"]
  assert checkpoints.load_params_and_step(str(converted[layout]))[1] == 2


def test_from_t5x_carries_adafactors_factored_moments_by_the_dims_they_keep(converted):
  """T5X's v_row of a [D, H*K] query kernel keeps D (our dim 0) and its v_col keeps H*K (our
  dims 1, 2); for the [H*K, D] output kernel the heuristic puts the rows on H*K, so its v_row
  keeps our (0, 1) and its v_col our 2. Unfactored statistics (layer norms, the relative-
  position table) keep every dim."""
  ref = _reference("unscanned")
  moments = t5x.moments_from_tree(_flat_tree(converted["unscanned"] / t5x.MOMENTS_DIR / "params"))
  q = moments[("encoder", "layers_1", "attention", "query", "kernel")]
  np.testing.assert_array_equal(q["keep0"], ref["state/param_states/encoder/layers_1/attention/query/kernel/v_row"])
  np.testing.assert_array_equal(q["keep1_2"], ref["state/param_states/encoder/layers_1/attention/query/kernel/v_col"]
                                .reshape(2, 64))
  o = moments[("decoder", "layers_0", "self_attention", "out", "kernel")]
  np.testing.assert_array_equal(o["keep0_1"], ref["state/param_states/decoder/layers_0/self_attention/out/kernel/v_row"]
                                .reshape(2, 64))
  np.testing.assert_array_equal(o["keep2"], ref["state/param_states/decoder/layers_0/self_attention/out/kernel/v_col"])
  norm = moments[("encoder", "encoder_norm", "scale")]
  np.testing.assert_array_equal(norm["keep0"], ref["state/param_states/encoder/encoder_norm/scale/v"])
  assert all(np.any(a) for d in moments.values() for a in d.values()), "every statistic was trained (nonzero)"
  factored = sum(1 for n, x in ref.items() if n.endswith("/v_row") and x.shape != (1,))
  # 2-D kernels T5X factored: 2 encoder layers x 7, 1 decoder layer x 11, embedding and head
  assert factored == 2 * 7 + 11 + 2
  assert sum(len(d) == 2 for d in moments.values()) == factored


def _flat_tree(item):
  from flan_jax.checkpointing.param_trees import plain as _plain
  import orbax.checkpoint as ocp
  with jax.default_device(jax.devices("cpu")[0]):
    return jax.tree.map(np.asarray, _plain(ocp.StandardCheckpointer().restore(str(item))))


def _trainer_for(cfg: t5.T5Config):
  from tests.helpers import make_trainer, random_encdec_batch
  batch = random_encdec_batch(batch_size=2, inputs_len=8, targets_len=4, vocab=cfg.vocab_size, seed=3)
  return make_trainer(num_devices=1, config=cfg, batch=batch)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["t5x_dir", "converted"])
def test_one_step_from_a_t5x_checkpoint_is_t5xs_adafactor_update(converted, source):
  """INITIAL_CHECKPOINT_PATH at the T5X checkpoint itself, or at its conversion: the run
  continues T5X's Adafactor exactly: step 2, and the statistics T5X saved. One update with
  given gradients equals the re-typed T5X formula applied to T5X's own arrays and state."""
  path = str(FIXTURES / "unscanned") if source == "t5x_dir" else str(converted["unscanned"])
  cfg = checkpoints.read_model_record(path).config
  tr = _trainer_for(cfg)
  state = tr.init_state(0)
  params, step, moments, why = checkpoints.load_initial(path, tr.abstract_state.params)
  assert step == 2 and why is None
  state = tr.replace_params(state, params, initial_step=step, moments=moments)
  carried, missed = tr.moments_report
  assert missed == [] and carried == len(jax.tree.leaves(params))
  assert optim.adafactor_step(jax.device_get(state.opt_state)) == 2

  ref = _reference("unscanned")
  start = _flat(jax.device_get(state.params))
  rng = np.random.default_rng(7)
  grads = {n: (rng.standard_normal(x.shape) * 1e-2).astype(np.float32) for n, x in start.items()}
  g_tree = jax.tree.unflatten(jax.tree.structure(state.params), [grads[n] for n in start])
  updates, _ = jax.jit(tr.optimizer.update)(g_tree, state.opt_state, state.params)
  ours = _flat(jax.tree.map(lambda p, u: p + u, jax.device_get(state.params), jax.device_get(updates)))
  for name, p0 in start.items():
    t5x_p = ref[f"target/{name}"]
    t5x_state = {k: ref[f"state/param_states/{name}/{k}"] for k in ("v_row", "v_col", "v")}
    plan = ref_plan(t5x_p.shape)
    t5x_state = {k: v for k, v in t5x_state.items() if (k == "v") == (plan[1] is None)}
    want, _ = ref_update(t5x_p, grads[name].reshape(t5x_p.shape), t5x_state, 2, plan)
    np.testing.assert_allclose(ours[name], want.reshape(p0.shape), rtol=2e-5, atol=1e-7,
                               err_msg=f"{name}: one update from T5X's state")


@pytest.mark.slow
def test_scanned_t5x_checkpoint_loads_into_both_layouts_with_its_moments():
  """scalable_t5's stacks (layer axis 1, a table per layer) into our scanned model (layer axis
  0) and our unscanned one; its Adafactor statistics carry into either."""
  import dataclasses
  path = str(FIXTURES / "scanned")
  want = _expected_params("scanned")
  base = checkpoints.read_model_record(path).config
  for scan in (True, False):
    cfg = dataclasses.replace(base, scan_layers=scan)
    tr = _trainer_for(cfg)
    params, step, moments, _ = checkpoints.load_initial(path, tr.abstract_state.params)
    got = _flat(jax.device_get(params))
    if scan:
      from flan_jax.models import unstack_layers
      got = _flat(unstack_layers(jax.tree.map(np.asarray, jax.device_get(params))))
    for name, w in want.items():
      np.testing.assert_array_equal(got[name], w.astype(np.float32), err_msg=name)
    state = tr.replace_params(tr.init_state(0), params, initial_step=step, moments=moments)
    assert tr.moments_report[1] == [], tr.moments_report
    assert optim.adafactor_step(jax.device_get(state.opt_state)) == 2


def test_t5x_checkpoints_work_where_any_checkpoint_does(tmp_path):
  """generate/infer/eval's loader and to-hf take a T5X directory (or its model directory)."""
  from flan_jax.inference import decoding, loading
  decoder, params, rec = loading.load_decoder(str(FIXTURES / "unscanned"))
  assert rec.step == 2 and rec.source.endswith("checkpoint_2/checkpoint")
  out = decoder.decode(params, np.ones((1, 8), np.int32), decoding.DecodeConfig(max_decode_len=4,
                                                                                        search="greedy"))
  assert out.tokens.shape[0] == 1
  assert checkpoints.params_item(str(FIXTURES / "unscanned")).endswith("checkpoint_2")
  with pytest.raises(ValueError, match="records no vocabulary"):
    loading.choose_vocabulary(rec)


@pytest.mark.slow
def test_relpos_per_layer_decodes_as_it_scores():
  """A model with a relative-position table per layer: cached greedy decoding gives the tokens
  that teacher-forced argmax gives, so the per-layer tables are used alike in both paths."""
  from flan_jax.inference import decoding
  cfg = t5.T5Config(vocab_size=64, emb_dim=32, num_heads=2, head_dim=8, mlp_dim=32, num_encoder_layers=2,
                    num_decoder_layers=2, relpos_per_layer=True)
  model = t5.Transformer(cfg)
  tokens = np.arange(2, 10, dtype=np.int32)[None]
  params = nn.meta.unbox(model.init(jax.random.PRNGKey(1), tokens, tokens)["params"])
  assert params["encoder"]["layers_1"]["relpos_bias"]["rel_embedding"].shape == (2, 32)
  assert "relpos_bias" not in params["encoder"]
  decoder = decoding.SequenceDecoder(model, _mesh())
  out = decoder.decode(params, tokens, decoding.DecodeConfig(max_decode_len=6, search="greedy"))
  generated = np.asarray(out.tokens)[0]
  dec_in = np.concatenate([[0], generated[:-1]])[None].astype(np.int32)
  logits = model.apply({"params": params}, tokens, dec_in)
  np.testing.assert_array_equal(np.argmax(np.asarray(logits)[0], -1)[:4], generated[:4])
  assert t5.EncoderDecoder().param_count(cfg) == sum(x.size for x in jax.tree.leaves(params))


def _mesh():
  from flan_jax.core import partitioning
  return partitioning.make_mesh(partitioning.MeshConfig(), jax.devices()[:1])


# ----------------------------------------------------------------------------------------
# Bad input: one line naming the file or parameter, nothing written.


def _convert(src, dst, *extra):
  return subprocess.run([sys.executable, "-m", "flan_jax.cli", "convert", "from-t5x", str(src), str(dst), *extra],
                        capture_output=True, text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})


def _copy(tmp_path, layout="unscanned"):
  dst = tmp_path / "t5x"
  shutil.copytree(FIXTURES / layout / "checkpoint_2", dst / "checkpoint_2")
  return dst


def _one_line_error(proc, *words):
  assert proc.returncode == 1, proc.stdout + proc.stderr
  errors = [l for l in proc.stderr.splitlines() if l.startswith("flan-jax convert from-t5x: error:")]
  assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
  for w in words:
    assert w in errors[0], errors[0]
  return errors[0]


@pytest.mark.slow
def test_bad_t5x_inputs_are_one_line_naming_the_file_and_write_nothing(tmp_path):
  empty = tmp_path / "no_index"
  (empty / "checkpoint_7").mkdir(parents=True)
  (empty / "checkpoint_7" / "target.x").mkdir()
  out = tmp_path / "out"
  _one_line_error(_convert(empty / "checkpoint_7", out), "no T5X 'checkpoint' file", str(empty / "checkpoint_7"))
  assert not out.exists()

  src = _copy(tmp_path)
  chunk = src / "checkpoint_2" / "target.decoder.layers_0.mlp.wo.kernel" / "0.0"
  chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
  line = _one_line_error(_convert(src, out), "target.decoder.layers_0.mlp.wo.kernel", "truncated or corrupt")
  assert "target/decoder/layers_0/mlp/wo/kernel" in line
  assert not out.exists() and not (tmp_path / "out.partial").exists()

  src = _copy(tmp_path / "b")
  _one_line_error(_convert(src, out, "--gin_file=gin/recipes/flan_t5_small.gin"), "token_embedder/embedding",
                  "vocab_size=128", "another model than the recipe names")
  assert not out.exists()

  (src / "checkpoint_2" / "checkpoint").write_bytes(b"\x81\xa7version")
  _one_line_error(_convert(src, out), "checkpoint_2/checkpoint", "truncated or corrupt")

  keep = tmp_path / "nonempty"
  keep.mkdir()
  (keep / "config.json").write_text("mine")
  _one_line_error(_convert(FIXTURES / "unscanned", keep), "not empty")
  assert (keep / "config.json").read_text() == "mine" and sorted(os.listdir(keep)) == ["config.json"]


def test_initial_checkpoint_path_names_a_broken_t5x_checkpoint(tmp_path):
  src = _copy(tmp_path)
  (src / "checkpoint_2" / "checkpoint").write_bytes(b"")
  with pytest.raises(checkpoints.CheckpointError, match="INITIAL_CHECKPOINT_PATH: .*checkpoint_2/checkpoint"):
    checkpoints.check_params_path(str(src))


def test_a_gs_checkpoint_converts_reading_every_array_once(tmp_path, converted):
  """gs:// through tensorstore's gcs driver, served by a local stand-in for the GCS JSON API:
  the same checkpoint as from disk, and no object read twice."""
  from tests.fake_gcs import FakeGcs
  bucket = tmp_path / "gcs" / "t5x-fixtures"
  shutil.copytree(FIXTURES / "unscanned" / "checkpoint_2", bucket / "unscanned" / "checkpoint_2")
  server = FakeGcs(str(tmp_path / "gcs"))
  dst = tmp_path / "from_gcs"
  with server.serving():
    proc = subprocess.run([sys.executable, "-m", "flan_jax.cli", "convert", "from-t5x",
                           "gs://t5x-fixtures/unscanned/checkpoint_2", str(dst)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu", **server.env()})
  assert proc.returncode == 0, proc.stderr
  assert "step 2" in proc.stdout
  got, want = _flat(checkpoints.load_params(str(dst))), _flat(checkpoints.load_params(str(converted["unscanned"])))
  assert sorted(got) == sorted(want) and all(got[k].tobytes() == want[k].tobytes() for k in want)
  chunks = {k: n for k, n in server.reads.items() if not k.endswith((".zarray", "/checkpoint"))}
  arrays = [d for d in os.listdir(bucket / "unscanned" / "checkpoint_2") if d != "checkpoint"]
  assert len(chunks) == len(arrays) and set(chunks.values()) == {1}, server.reads
  assert server.reads["t5x-fixtures/unscanned/checkpoint_2/checkpoint"] == 1


@pytest.mark.slow
def test_train_starts_from_a_t5x_checkpoint_without_initial_checkpoint_step(tmp_path):
  """`flan-jax train --gin.INITIAL_CHECKPOINT_PATH=<T5X checkpoint>`: the model as the
  checkpoint's shapes give it (here from a gin model file of the same shapes), the step and the
  second-moment statistics from T5X, nothing typed by hand."""
  import seqio
  spm = os.path.join(os.path.dirname(seqio.__file__), "test_data", "sentencepiece", "sentencepiece.model")
  rows = [{"question": f"{i} plus {i}", "answer": str(2 * i)} for i in range(400)]
  for split, part in (("train", rows[:380]), ("validation", rows[380:])):
    (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
  (tmp_path / "t5x_tiny_tasks.py").write_text(
      "import seqio\nfrom flan_jax.tasks import api, templates\n"
      f"names = api.register_flan_task('t5x_tiny_doubling', {{'train': {str(tmp_path / 'train.jsonl')!r}, "
      f"'validation': {str(tmp_path / 'validation.jsonl')!r}}}, [templates.Template('{{question}}', "
      f"'{{answer}}')], vocabulary=seqio.SentencePieceVocabulary({spm!r}), formats=('zsnoopt',))\n")
  (tmp_path / "t5x_tiny.gin").write_text(
      "include 'models/t5_1_1/base_arch.gin'\n"
      "T5Config.vocab_size = 128\nT5Config.emb_dim = 128\nT5Config.num_heads = 2\nT5Config.head_dim = 64\n"
      "T5Config.mlp_dim = 128\nT5Config.num_encoder_layers = 2\nT5Config.num_decoder_layers = 1\n"
      "T5Config.dropout_rate = 0.0\n")
  repo = pathlib.Path(__file__).parent.parent
  cmd = [sys.executable, "-m", "flan_jax.cli", "train", "--gin_file=gin/recipes/quickstart.gin",
         f"--gin_file={tmp_path / 't5x_tiny.gin'}", f"--gin.MODEL_DIR={tmp_path / 'run'}", "--gin.TRAIN_STEPS=2",
         "--gin.BATCH_SIZE=2", "--gin.TASK_FEATURE_LENGTHS={'inputs': 16, 'targets': 8}",
         "--gin.TASK_MODULES=['t5x_tiny_tasks']", "--gin.MIXTURE_OR_TASK_NAME='t5x_tiny_doubling_zsnoopt'",
         f"--gin.INITIAL_CHECKPOINT_PATH='{FIXTURES / 'unscanned'}'"]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu",
             PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
  out = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
  line = next(l for l in out.stdout.splitlines() if l.startswith("initialised parameters from"))
  assert "Adafactor continues from step 2 with its second-moment statistics (" in line, line
  assert "done: step 2" in out.stdout


@pytest.mark.slow
def test_to_hf_and_generate_take_a_t5x_checkpoint(tmp_path, converted):
  """to-hf straight from T5X's directory gives what from-hf reads back as the same parameters;
  generate decodes from it with --vocab and, without one, says that T5X records none; a
  scanned scalable_t5 checkpoint (a table per layer) is refused by to-hf in one line."""
  from flan_jax.checkpointing import hf
  convert_cli.to_hf(str(FIXTURES / "unscanned"), str(tmp_path / "hf"))
  convert_cli.from_hf(str(tmp_path / "hf"), str(tmp_path / "back"))
  got, want = _flat(checkpoints.load_params(str(tmp_path / "back"))), _flat(checkpoints.load_params(
      str(converted["unscanned"])))
  assert sorted(got) == sorted(want) and all(np.array_equal(got[k], want[k]) for k in want)
  with pytest.raises(hf.ConversionError, match="relative-position table per layer"):
    convert_cli.to_hf(str(FIXTURES / "scanned"), str(tmp_path / "hf_scanned"))
  assert not (tmp_path / "hf_scanned").exists()

  import seqio
  spm = os.path.join(os.path.dirname(seqio.__file__), "test_data", "sentencepiece", "sentencepiece.model")
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  gen = [sys.executable, "-m", "flan_jax.cli", "generate", "--checkpoint", str(FIXTURES / "unscanned"),
         "--max_decode_len", "4"]
  ok = subprocess.run(gen + ["--vocab", spm, "a b c"], capture_output=True, text=True, timeout=300, env=env)
  assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 1, ok.stderr[-2000:]
  bad = subprocess.run(gen + ["a b c"], capture_output=True, text=True, timeout=300, env=env)
  assert bad.returncode != 0 and "T5X checkpoints carry none" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_t5x_checkpoint_lands_on_a_sharded_mesh(layout):
  """FSDP x model parallel over 8 devices: every array arrives on the sharding the trainer
  asks for, with T5X's values, scanned or not."""
  import dataclasses
  from flan_jax.core import partitioning
  from tests.helpers import make_trainer, random_encdec_batch
  path = str(FIXTURES / layout)
  cfg = dataclasses.replace(checkpoints.read_model_record(path).config, scan_layers=layout == "scanned")
  batch = random_encdec_batch(batch_size=8, inputs_len=8, targets_len=4, vocab=cfg.vocab_size, seed=3)
  tr = make_trainer(partitioning.MeshConfig(fsdp=True, fsdp_size=4, model_parallel=2), config=cfg, batch=batch)
  params, step, moments, _ = checkpoints.load_initial(path, tr.abstract_state.params)
  for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(tr.abstract_state.params)):
    assert got.sharding == want.sharding and got.shape == want.shape
  assert any(len(x.sharding.device_set) == 8 and not x.sharding.is_fully_replicated for x in jax.tree.leaves(params))
  flat = _flat(jax.device_get(params))
  if layout == "scanned":
    from flan_jax.models import unstack_layers
    flat = _flat(unstack_layers(jax.tree.map(np.asarray, jax.device_get(params))))
  for name, w in _expected_params(layout).items():
    np.testing.assert_array_equal(flat[name], w.astype(np.float32), err_msg=name)
  state = tr.replace_params(tr.init_state(0), params, initial_step=step, moments=moments)
  assert tr.moments_report[1] == []


def test_eval_of_a_t5x_checkpoint_reports_its_step_and_writes_only_to_output_dir(tmp_path):
  from flan_jax.evaluation import evaluate as eval_lib
  import seqio
  spm = os.path.join(os.path.dirname(seqio.__file__), "test_data", "sentencepiece", "sentencepiece.model")
  from flan_jax.tasks import api, templates
  rows = [{"question": f"{i} plus {i}", "answer": str(2 * i)} for i in range(8)]
  names = api.register_flan_task("t5x_eval_doubling", {"train": rows, "validation": rows},
                                 [templates.Template("{question}", "{answer}")], formats=("zsnoopt",),
                                 vocabulary=seqio.SentencePieceVocabulary(spm), metrics=["exact_match"])
  before = sorted(os.listdir(FIXTURES / "unscanned" / "checkpoint_2"))
  with pytest.raises(ValueError, match="set output_dir .* is a T5X checkpoint"):
    eval_lib.evaluate(checkpoint_path=str(FIXTURES / "unscanned"), mixture_or_task_names=names, task_modules=(),
                      max_examples=2, batch_size=2, input_length=16,
                      decode_config=infer_decode_config())
  results = eval_lib.evaluate(checkpoint_path=str(FIXTURES / "unscanned"), mixture_or_task_names=names,
                              task_modules=(), max_examples=2, batch_size=2, input_length=16,
                              decode_config=infer_decode_config(), output_dir=str(tmp_path / "eval"))
  assert results["step"] == 2
  assert sorted(os.listdir(FIXTURES / "unscanned" / "checkpoint_2")) == before
  assert os.listdir(tmp_path / "eval")


def infer_decode_config():
  from flan_jax.inference import decoding
  return decoding.DecodeConfig(max_decode_len=4, search="greedy")
