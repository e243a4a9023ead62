"""End to end: `flan-jax train` briefly (with evaluation during training), then `flan-jax eval`
on the embedded held-out families, for the trained and an untrained model of the same shape.

Why the comparison uses the gold targets' log-likelihood: after 60 steps a 1M-parameter
model rarely produces an exact held-out answer, so exact match is 0 for both models and
would prove nothing. The mean per-token log-likelihood of the held-out targets (teacher
forced, `target_logprob`) starts at about -log(2048) = -7.6 nats for the initialised model
and drops by several nats once the model has learned the vocabulary and the answer formats
(digits, weekday names, dates). We require an improvement of 1 nat/token on every held-out
task, far inside that gap, so the test is not flaky.
"""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELDOUT = "flan_jax_embedded_heldout"
EVAL_ARGS = [
    "--gin_file=gin/recipes/quickstart_eval.gin",
    f"--gin.EVAL_MIXTURES_OR_TASKS=['{HELDOUT}']",
    "--gin.BIGBENCH_TASKS=[]",
    "--gin.EVAL_MAX_EXAMPLES=8",
    "--gin.EVAL_BATCH_SIZE=8",
    "--gin.EVAL_INPUT_LENGTH=128",
    "--gin.MAX_DECODE_LEN=32",
]


def _env():
  env = dict(os.environ)
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
  env["PYTHONUNBUFFERED"] = "1"
  return env


def _run(*args):
  out = subprocess.run([sys.executable, "-m", "flan_jax.cli", *args], cwd=REPO, env=_env(),
                       capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
  return out.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  model_dir = tmp_path_factory.mktemp("eval_e2e") / "run"
  stdout = _run("train", "--gin_file=gin/recipes/quickstart.gin", f"--gin.MODEL_DIR={model_dir}",
                "--gin.TRAIN_STEPS=60", "--gin.BATCH_SIZE=8", "--gin.CHECKPOINT_PERIOD=60",
                "--gin.TASK_FEATURE_LENGTHS={'inputs': 128, 'targets': 32}",
                "--gin.train.eval_period=30", "--gin.train.eval_mixture_or_task_name=embedded_sort_numbers_zsnoopt",
                "--gin.train.eval_max_examples=4")
  return model_dir, stdout


@pytest.mark.slow
def test_training_runs_evaluation_every_period(trained):
  model_dir, stdout = trained
  assert "eval at step 30:" in stdout and "eval at step 60:" in stdout, stdout[-2000:]
  with open(model_dir / "eval" / "results_30.json") as f:
    results = json.load(f)
  assert list(results["tasks"]) == ["embedded_sort_numbers_zsnoopt"]
  assert results["tasks"]["embedded_sort_numbers_zsnoopt"]["num_examples"] == 4
  assert any(n.startswith("events.out.tfevents") for n in os.listdir(model_dir / "eval"))


@pytest.mark.slow
def test_eval_writes_table_and_trained_beats_untrained(trained):
  model_dir, _ = trained
  eval_dir = model_dir / "eval"
  stdout = _run("eval", *EVAL_ARGS, f"--gin.CHECKPOINT_PATH={model_dir}")
  assert "| Model | Held-out Direct | Held-out CoT | Norm. avg |" in stdout
  _run("eval", *EVAL_ARGS, "--gin_file=models/t5_1_1/tiny.gin", "--gin.VOCAB_SIZE=2048",
       "--gin.evaluate.model_config=%MODEL_CONFIG", "--gin.CHECKPOINT_PATH=None", f"--gin.OUTPUT_DIR={eval_dir}")

  with open(eval_dir / "results_60.json") as f:
    trained_results = json.load(f)
  with open(eval_dir / "results_init.json") as f:
    untrained_results = json.load(f)
  tasks = sorted(trained_results["tasks"])
  assert len(tasks) == 10 and tasks == sorted(untrained_results["tasks"])  # 2 families x their formats
  for name in tasks:
    t, u = trained_results["tasks"][name], untrained_results["tasks"][name]
    assert t["num_examples"] == u["num_examples"] == 8
    assert t["metrics"]["target_logprob"] > u["metrics"]["target_logprob"] + 1.0, (
        name, t["metrics"]["target_logprob"], u["metrics"]["target_logprob"])
  assert set(trained_results["columns"]) == {"Held-out Direct", "Held-out CoT"}
  assert trained_results["normalized_average"] is not None

  table = (eval_dir / "results.md").read_text()
  rows = [line for line in table.splitlines() if line.startswith("| untrained") or line.startswith("| run @")]
  assert [r.split(" |")[0] for r in rows] == ["| untrained", "| run @ 30", "| run @ 60"], table


@pytest.mark.slow
def test_readme_infer_generate_and_to_hf_on_the_run(trained, tmp_path):
  """README commands on the T5 quickstart run, each in a fresh process: infer (which once
  failed with gin's "config was locked"), generate, and `convert to-hf MODEL_DIR OUT`, whose
  output transformers loads (tokenizer and model) and which gives our logits."""
  model_dir, _ = trained
  preds, hf_dir = tmp_path / "preds", tmp_path / "hf"
  commands = {
      "infer": ["infer", "--gin_file=gin/runs/infer.gin", f"--gin.CHECKPOINT_PATH={model_dir}",
                "--gin.MIXTURE_OR_TASK_NAME=flan_jax_embedded_heldout", f"--gin.INFER_OUTPUT_DIR={preds}",
                "--gin.INFER_MAX_EXAMPLES=1", "--gin.BATCH_SIZE=1", "--gin.MAX_DECODE_LEN=4",
                "--gin.TASK_FEATURE_LENGTHS={'inputs': 128, 'targets': 4}"],
      "generate": ["generate", "--checkpoint", str(model_dir), "--max_decode_len", "4",
                   "Sort these words: pear apple fig"],
      "to-hf": ["convert", "to-hf", str(model_dir), str(hf_dir)],
  }
  procs = {k: subprocess.Popen([sys.executable, "-m", "flan_jax.cli", *c], cwd=REPO, env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k, c in commands.items()}
  for name, p in procs.items():
    out, err = p.communicate(timeout=900)
    assert p.returncode == 0, f"{name}: {out[-1000:]}{err[-3000:]}"
    if name == "generate":
      assert len(out.splitlines()) == 1
  assert len(list(preds.glob("embedded_*.jsonl"))) == 10  # the held-out mixture's tasks

  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  import numpy as np
  from flan_jax.checkpointing import checkpoints
  from flan_jax import models
  from flan_jax.models import record
  from flan_jax.tasks import vocab
  tokenizer = transformers.AutoTokenizer.from_pretrained(str(hf_dir))
  sentence = "Sort these numbers: 12 7 9"
  ids = tokenizer(sentence).input_ids
  assert ids == list(vocab.default_vocabulary().encode(sentence)) + [1]
  assert tokenizer.decode(ids, skip_special_tokens=True) == sentence
  model = transformers.T5ForConditionalGeneration.from_pretrained(str(hf_dir)).eval()
  enc = np.asarray([ids + [0] * 3], np.int64)
  dec = np.asarray([[0, 5, 9, 17, 1]], np.int64)
  with torch.no_grad():
    want = model(input_ids=torch.from_numpy(enc), attention_mask=torch.from_numpy(enc != 0).long(),
                 decoder_input_ids=torch.from_numpy(dec)).logits.numpy()
  rec = record.read_record(str(model_dir))
  module, _ = models.build_model(rec.config)
  got = np.asarray(module.apply({"params": checkpoints.load_params(str(model_dir))}, enc.astype(np.int32),
                                dec.astype(np.int32)))
  assert np.max(np.abs(got - want)) < 5e-5 * max(1.0, np.max(np.abs(want)))
