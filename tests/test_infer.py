"""`flan-jax generate` and `flan-jax infer` end to end through `flan_jax.cli.main`, on tiny
random checkpoints: a converted-style parameter checkpoint (model.json + spiece.model) and a
run step directory of an old run (only its MODEL_DIR's config.gin), a T5 and a PaLM decoder."""
import io
import json

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_jax.checkpointing import param_trees
from flan_jax.checkpointing import checkpoints
from flan_jax import cli
from flan_jax.inference import decoding
from flan_jax.core import partitioning
from flan_jax.models import palm, record, t5
from flan_jax.tasks import vocab as vocab_lib

TASK = "embedded_sort_numbers_zsnoopt"
T5_CFG = t5.T5Config(vocab_size=2048, emb_dim=32, num_heads=2, head_dim=16, mlp_dim=64, num_encoder_layers=1,
                     num_decoder_layers=1, dropout_rate=0.0)
PALM_CFG = palm.PaLMConfig(vocab_size=2048, emb_dim=32, num_heads=2, num_kv_heads=1, head_dim=16, num_layers=1,
                           mlp_dim=64)


@pytest.fixture(autouse=True)
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _init(model, *args):
  return jax.device_get(nn.unbox(jax.jit(model.init)(jax.random.key(0), *args)["params"]))


@pytest.fixture(scope="module")
def t5_checkpoint(tmp_path_factory):
  """A parameter checkpoint with model.json and spiece.model, as `flan-jax convert from-hf` writes."""
  path = str(tmp_path_factory.mktemp("t5") / "ckpt")
  x = jnp.ones((1, 1), jnp.int32)
  params = _init(t5.Transformer(T5_CFG), x, x)
  param_trees.save_params(path, params)
  record.write_record(path, T5_CFG, str(vocab_lib.DEFAULT_SPM_PATH), vocab_size=2048)
  return path, params


@pytest.fixture(scope="module")
def palm_run_step(tmp_path_factory):
  """A run step directory MODEL_DIR/checkpoints/1; the model is in MODEL_DIR/config.gin with
  the scoped bindings of gin's operative config, as `flan-jax train` writes it."""
  model_dir = tmp_path_factory.mktemp("palm_run")
  params = _init(palm.DecoderOnlyLM(PALM_CFG), jnp.ones((1, 1), jnp.int32))
  run = checkpoints.RunCheckpoints(str(model_dir), async_save=False)
  run.save(1, {"params": params, "step": np.int32(1)}, {"batches_taken": 1})
  run.close()
  lines = ["train.model_config = %MODEL_CONFIG"]
  lines += [f"MODEL_CONFIG/PaLMConfig.{k} = {v!r}" for k, v in PALM_CFG.__dict__.items()]
  (model_dir / "config.gin").write_text("\n".join(lines) + "\n")
  return str(model_dir / "checkpoints" / "1"), params


def _reference_completions(model, params, prompts, max_decode_len):
  """Greedy decoding of the prompts' ids, unpadded, one at a time, decoded up to EOS."""
  vocab = vocab_lib.default_vocabulary()
  dec = decoding.SequenceDecoder(model, partitioning.make_mesh(devices=jax.devices()[:1]))
  p = dec.put_params(params)
  out = []
  for prompt in prompts:
    ids = list(vocab.encode(prompt)) + [decoding.EOS_ID]
    tokens = dec.greedy(p, [ids], max_decode_len=max_decode_len).tokens[0]
    out.append(decoding.detokenize(vocab, tokens))
  return out


@pytest.mark.slow
@pytest.mark.parametrize("family", ["t5", "palm"])
def test_generate_prints_one_greedy_completion_per_prompt(family, t5_checkpoint, palm_run_step, capsys):
  path, params = t5_checkpoint if family == "t5" else palm_run_step
  model = t5.Transformer(T5_CFG) if family == "t5" else palm.DecoderOnlyLM(PALM_CFG)
  prompts = ["Sort these numbers: 3 1 2", "hello"]
  assert cli.main(["generate", "--checkpoint", path, "--max_decode_len", "6", *prompts]) == 0
  lines = capsys.readouterr().out.splitlines()
  want = [t.replace("\n", "\\n") for t in _reference_completions(model, params, prompts, 6)]
  assert lines == want


@pytest.mark.slow
def test_generate_interactive_reads_prompts_until_eof(t5_checkpoint, capsys, monkeypatch):
  path, _ = t5_checkpoint
  monkeypatch.setattr("sys.stdin", io.StringIO("first prompt\n\nsecond prompt\n"))
  assert cli.main(["generate", "--checkpoint", path, "--interactive", "--max_decode_len", "4",
                   "--num_beams", "2"]) == 0
  assert len(capsys.readouterr().out.splitlines()) == 2  # the blank line is skipped


def test_generate_errors_are_specific(tmp_path, t5_checkpoint, capsys):
  assert cli.main(["generate", "--checkpoint", str(tmp_path), "hi"]) == 2
  assert f"no checkpoint in {tmp_path}" in capsys.readouterr().err
  assert cli.main(["generate", "--checkpoint", str(tmp_path / "nope"), "hi"]) == 2
  assert f"no such directory: {tmp_path / 'nope'}" in capsys.readouterr().err
  path, _ = t5_checkpoint
  assert cli.main(["generate", "--checkpoint", path, "--num_beams", "2", "--temperature", "0.5", "hi"]) == 2
  assert "beam search" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("family", ["t5", "palm"])
def test_infer_writes_jsonl_of_inputs_targets_predictions(family, t5_checkpoint, palm_run_step, tmp_path, capsys):
  path, params = t5_checkpoint if family == "t5" else palm_run_step
  out_dir = tmp_path / "infer"
  assert cli.main(["infer", "--gin_file=gin/runs/infer.gin", f"--gin.CHECKPOINT_PATH={path}",
                   f"--gin.MIXTURE_OR_TASK_NAME={TASK}", f"--gin.INFER_OUTPUT_DIR={out_dir}",
                   "--gin.INFER_MAX_EXAMPLES=5", "--gin.BATCH_SIZE=4", "--gin.MAX_DECODE_LEN=6",
                   "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 6}"]) == 0
  assert f"{TASK}: 5 predictions" in capsys.readouterr().out
  rows = [json.loads(line) for line in (out_dir / f"{TASK}.jsonl").read_text().splitlines()]
  assert [r["index"] for r in rows] == list(range(5))
  assert all(set(r) == {"task", "index", "inputs", "targets", "prediction", "score"} for r in rows)
  assert all(r["task"] == TASK and r["inputs"] and r["targets"] for r in rows)
  assert all(isinstance(r["prediction"], str) and r["score"] <= 0 for r in rows)
  # The predictions are the model's greedy decodes of the task's (tokenized) inputs.
  import seqio
  ds = seqio.get_mixture_or_task(TASK).get_dataset(sequence_length={"inputs": 32, "targets": 6},
                                                   split="validation", shuffle=False, num_epochs=1)
  first = next(ds.as_numpy_iterator())
  assert rows[0]["inputs"] == first["inputs_pretokenized"].decode()
  model = t5.Transformer(T5_CFG) if family == "t5" else palm.DecoderOnlyLM(PALM_CFG)
  dec = decoding.SequenceDecoder(model, partitioning.make_mesh(devices=jax.devices()[:1]))
  tokens = dec.greedy(dec.put_params(params), [first["inputs"]], max_decode_len=6).tokens[0]
  assert rows[0]["prediction"] == decoding.detokenize(vocab_lib.default_vocabulary(), tokens)


def test_infer_expands_mixtures_and_names_unknown_tasks():
  from flan_jax.tasks import lookup
  lookup.import_task_modules(["flan_jax.tasks.embedded"])
  # infer expands mixtures as the evaluator does (sampled ones too)
  names = lookup.expand_tasks(["flan_jax_embedded_heldout"])
  assert len(names) > 1 and all(n.startswith("embedded_") for n in names)
  with pytest.raises(ValueError, match="unknown task or mixture"):
    lookup.expand_tasks(["no_such_task"])
