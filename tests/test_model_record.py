"""The saved model record (model.json + spiece.model) and the model-family registry.

One short PaLM quickstart training in a fresh process serves every command check: `flan-jax
generate`, `infer` and `eval` then run on its MODEL_DIR, each in its own fresh process (nothing
imported beforehand), concurrently to save wall time. Before the record existed they built a
T5 for this PaLM checkpoint. The T5 quickstart's README commands run in test_eval_e2e.py,
which already trains one.
"""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.checkpointing import checkpoints
from flan_jax.inference import decoding, infer, loading
from flan_jax.planning import plan
from flan_jax.training import flops
from flan_jax import models
from flan_jax.core import optim, partitioning
from flan_jax.training import trainer
from flan_jax.models import palm, record, t5
from flan_jax.models.family import ModelConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = "embedded_sort_numbers_zsnoopt"
PROMPT = "Sort these numbers: 3 1 2"


def _cli(*args):
  return [sys.executable, "-m", "flan_jax.cli", *map(str, args)]


def _env():
  return dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", PYTHONUNBUFFERED="1")


def _run_all(commands: dict) -> dict:
  """Runs the commands concurrently, each in a fresh process; name -> CompletedProcess-like."""
  procs = {k: subprocess.Popen(c, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for k, c in commands.items()}
  out = {}
  for k, p in procs.items():
    stdout, stderr = p.communicate(timeout=900)
    out[k] = (p.returncode, stdout, stderr)
  return out


@pytest.fixture(scope="module")
def palm_run(tmp_path_factory):
  root = tmp_path_factory.mktemp("palm_record")
  model_dir = root / "run"
  rc, _, err = _run_all({"train": _cli(
      "train", "--gin_file=gin/recipes/quickstart_palm.gin", f"--gin.MODEL_DIR={model_dir}", "--gin.TRAIN_STEPS=2",
      "--gin.BATCH_SIZE=2", "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}")})["train"]
  assert rc == 0, err[-3000:]
  preds = root / "preds"
  results = _run_all({
      "generate": _cli("generate", "--checkpoint", model_dir, "--max_decode_len", 8, PROMPT),
      "infer": _cli("infer", "--gin_file=gin/runs/infer.gin", f"--gin.CHECKPOINT_PATH={model_dir}",
                    f"--gin.MIXTURE_OR_TASK_NAME={TASK}", f"--gin.INFER_OUTPUT_DIR={preds}",
                    "--gin.INFER_MAX_EXAMPLES=2", "--gin.BATCH_SIZE=2", "--gin.MAX_DECODE_LEN=4",
                    "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 4}"),
      "eval": _cli("eval", "--gin_file=gin/recipes/quickstart_eval.gin", f"--gin.CHECKPOINT_PATH={model_dir}",
                   f"--gin.EVAL_MIXTURES_OR_TASKS=['{TASK}']", "--gin.BIGBENCH_TASKS=[]", "--gin.EVAL_MAX_EXAMPLES=2",
                   "--gin.EVAL_BATCH_SIZE=2", "--gin.EVAL_INPUT_LENGTH=64", "--gin.MAX_DECODE_LEN=4"),
  })
  return model_dir, preds, results


@pytest.fixture(autouse=True)
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


@pytest.mark.slow
def test_palm_run_records_its_model_and_vocabulary(palm_run):
  model_dir, _, _ = palm_run
  rec = record.read_record(str(model_dir))
  assert rec.family.name == "decoder_only" and isinstance(rec.config, palm.PaLMConfig)
  assert (rec.config.num_layers, rec.config.emb_dim, rec.config.vocab_size) == (2, 128, 2048)
  from flan_jax.tasks import vocab
  assert open(rec.vocabulary_file, "rb").read() == vocab.DEFAULT_SPM_PATH.read_bytes()
  # A step directory finds its run's record.
  step_dir = model_dir / "checkpoints" / "2"
  assert record.read_record(str(step_dir)).config == rec.config


def test_generate_infer_eval_work_on_a_palm_run_in_fresh_processes(palm_run):
  model_dir, preds, results = palm_run
  for name, (rc, out, err) in results.items():
    assert rc == 0, f"{name}: {err[-3000:]}"
    assert "Traceback" not in err and "_CHECKPOINT_METADATA" not in err, f"{name}: {err[-2000:]}"
  # generate decoded with the PaLM model and the recorded vocabulary: the same text as here.
  decoder, params, rec = loading.load_decoder(str(model_dir))
  vocab = loading.choose_vocabulary(rec)
  ids = list(vocab.encode(PROMPT)) + [decoding.EOS_ID]
  tokens = decoder.greedy(params, [ids], max_decode_len=8).tokens[0]
  assert results["generate"][1].splitlines() == [decoding.detokenize(vocab, tokens).replace("\n", "\\n")]
  rows = [json.loads(l) for l in (preds / f"{TASK}.jsonl").read_text().splitlines()]
  assert len(rows) == 2 and all(isinstance(r["prediction"], str) for r in rows)
  res = json.loads((model_dir / "eval" / "results_2.json").read_text())
  assert TASK in json.dumps(res)


def test_old_run_directory_with_only_config_gin_still_loads(palm_run, tmp_path):
  """The one fallback: a run written before model.json (its operative config.gin also lists
  T5Config, constructed at import; the model is the class train.model_config names)."""
  model_dir, _, _ = palm_run
  old = tmp_path / "old_run"
  shutil.copytree(model_dir, old, ignore=shutil.ignore_patterns("model.json", "spiece.model", "eval"))
  rec = record.read_record(str(old / "checkpoints" / "2"))
  assert rec.source == str(old / "config.gin") and rec.vocabulary_file is None
  assert rec.config == record.read_record(str(model_dir)).config
  decoder, params, _ = loading.load_decoder(str(old))
  assert models.family_for(decoder.model).name == "decoder_only"


def test_another_model_in_the_directory_is_named_in_a_few_lines(palm_run):
  model_dir = str(palm_run[0])
  t5_cfg = t5.T5Config(vocab_size=2048, emb_dim=128, num_heads=4, head_dim=32, mlp_dim=256,
                       num_encoder_layers=2, num_decoder_layers=2)
  abstract = nn.unbox(models.family_for(t5_cfg).abstract_params(t5_cfg))
  with pytest.raises(checkpoints.CheckpointError) as e:
    checkpoints.check_params_structure(model_dir, abstract)
  msg = str(e.value)
  assert "holds another model" in msg and "decoder/" in msg and len(msg) < 400 and "partial_restore" not in msg
  # Resuming MODEL_DIR with another model stops before the restore, naming what differs.
  with pytest.raises(record.RecordError, match=r"holds another model .*decoder_only model, this run is encoder_decoder"):
    record.check_same_model(model_dir, t5_cfg)
  wider = dataclasses.replace(record.read_record(model_dir).config, emb_dim=256)
  with pytest.raises(record.RecordError, match=r"emb_dim=128 there, 256 here"):
    record.check_same_model(model_dir, wider)
  record.check_same_model(model_dir, dataclasses.replace(wider, emb_dim=128, dropout_rate=0.1))  # same params


def test_missing_paths_are_named(tmp_path, capsys):
  from flan_jax import cli
  assert cli.main(["infer", "--gin_file=gin/runs/infer.gin", f"--gin.CHECKPOINT_PATH={tmp_path / 'nope'}",
                   f"--gin.MIXTURE_OR_TASK_NAME={TASK}", f"--gin.INFER_OUTPUT_DIR={tmp_path / 'o'}"]) == 2
  assert f"no such directory: {tmp_path / 'nope'}" in capsys.readouterr().err
  gin.clear_config()
  assert cli.main(["eval", "--gin_file=gin/recipes/quickstart_eval.gin", f"--gin.CHECKPOINT_PATH={tmp_path}",
                   f"--gin.EVAL_MIXTURES_OR_TASKS=['{TASK}']", "--gin.BIGBENCH_TASKS=[]"]) == 2
  assert f"no checkpoint in {tmp_path}" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------
# A third family, registered here and nowhere else.


@dataclasses.dataclass(frozen=True)
class ToyConfig(ModelConfig):
  """A one-layer decoder-only LM; `num_layers`/`num_kv_heads` are what the planner reads."""
  vocab_size: int = 64
  emb_dim: int = 16
  num_heads: int = 2
  head_dim: int = 8
  mlp_dim: int = 32
  mlp_activations: tuple = ("silu", "linear")
  num_layers: int = 1
  num_kv_heads: int = 1


class ToyLM(nn.Module):
  """Embedding, one PaLM block, norm, tied output: built from the shared layers."""
  config: ToyConfig

  @nn.compact
  def __call__(self, decoder_input_tokens, decoder_positions=None, deterministic=True, decode=False,
               **unused_features):
    cfg = self.config
    inner = palm.PaLMConfig(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)})
    return palm.DecoderOnlyLM(inner, name="lm")(decoder_input_tokens, decoder_positions=decoder_positions,
                                         deterministic=deterministic, decode=decode)


class ToyFamily(palm.DecoderOnly):
  name = "toy_decoder"
  config_class = ToyConfig
  feature_converter = "decoder"

  def build(self, config):
    return ToyLM(config)


@pytest.fixture
def toy_family():
  family = models.register_family(ToyFamily())
  yield family
  models._FAMILIES.pop(family.name)


@pytest.mark.slow
def test_a_third_family_trains_decodes_plans_and_counts_flops(toy_family, tmp_path):
  cfg = ToyConfig()
  assert models.family_for(cfg) is toy_family
  module, converter = models.build_model(cfg)
  assert isinstance(module, ToyLM) and converter == "decoder"
  mesh = partitioning.make_mesh(devices=jax.devices()[:1])

  # Train: the loss falls on a repeated batch.
  rng = np.random.default_rng(0)
  tokens = rng.integers(2, cfg.vocab_size, size=(4, 12)).astype(np.int32)
  batch = {"decoder_input_tokens": np.pad(tokens[:, :-1], ((0, 0), (1, 0))), "decoder_target_tokens": tokens,
           "decoder_loss_weights": np.ones_like(tokens)}
  example = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()}
  tx, _ = optim.make_optimizer(optim.OptimizerConfig(learning_rate=1e-2), 20)
  tr = trainer.Trainer(module, tx, mesh, example)
  state = tr.init_state(0)
  losses = []
  for _ in range(5):
    state, metrics = tr.step(state, trainer.global_batch(batch, tr.batch_shardings))
    losses.append(float(metrics["loss"]))
  assert losses[-1] < losses[0]

  # Parameter count and FLOPs from the family; the count is the initialised model's.
  n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params))
  assert flops.param_count(cfg) == n
  assert flops.train_step_flops(cfg, 4, 0, 12) == 3 * 4 * toy_family.forward_flops(cfg, 0, 12) > 6 * n * 48

  # Decode: cached greedy equals recomputing the full sequence at every step.
  dec = decoding.SequenceDecoder(module, mesh)
  params = dec.put_params(jax.device_get(state.params))
  prompt = [5, 6, 7]
  out = dec.greedy(params, [prompt], max_decode_len=4).tokens[0]
  seq = [0] + prompt
  for _ in range(4):
    logits = module.apply({"params": params}, jnp.asarray([seq], jnp.int32))
    seq.append(int(jnp.argmax(logits[0, -1])))
  np.testing.assert_array_equal(np.asarray(out), np.asarray(seq[4:]))

  # Plan: memory on a topology, from the family's abstract parameters.
  recipe = plan.Recipe(model_config=cfg, mesh_config=partitioning.MeshConfig(), optimizer_config=optim.OptimizerConfig(),
                       batch_size=8, input_length=0, target_length=32, train_steps=10)
  p = plan.Planner(recipe).plan(plan.parse_topology("v4-8"))
  assert recipe.is_decoder_only and p.params > 0 and p.activations > 0

  # The record round-trips it too.
  record.write_record(str(tmp_path), cfg)
  rec = record.read_record(str(tmp_path))
  assert rec.family is toy_family and rec.config == cfg
