"""A checkpoint with its own vocabulary evaluates on every held-out suite: a transformers T5
built here with the seqio test SentencePiece model (shipped in the seqio wheel; nothing is
downloaded), converted with `convert from-hf`, evaluated by `flan-jax eval` in a fresh
process on the suites' fixtures (tests/fixtures/eval_suites, written by
scripts/make_eval_fixtures.py in each release's layout)."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import seqio  # noqa: E402
import sentencepiece  # noqa: E402

from flan_jax.checkpointing import convert_cli
from flan_jax.evaluation import evaluator  # noqa: E402
from flan_jax.checkpointing import hf  # noqa: E402
from flan_jax.tasks import eval_suites  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "eval_suites"
SPM = os.path.join(os.path.dirname(seqio.__file__), "test_data", "sentencepiece", "sentencepiece.model")
TASKS = ["mmlu_anatomy_5shot_direct", "mmlu_anatomy_5shot_cot", "bbh_date_understanding_3shot_direct",
         "bbh_sports_understanding_3shot_cot", "tydiqa_goldp_finnish_1shot", "mgsm_de_8shot_cot",
         "mgsm_ja_8shot_cot", "mgsm_en_8shot_cot"]
INPUT_LENGTH = 384


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  """A converted T5 whose model.json records the seqio test vocabulary (26 pieces)."""
  root = tmp_path_factory.mktemp("any_checkpoint")
  vocab_size = seqio.SentencePieceVocabulary(SPM).vocab_size
  torch.manual_seed(0)
  model = transformers.T5ForConditionalGeneration(transformers.T5Config(
      vocab_size=vocab_size, d_model=32, d_ff=48, d_kv=8, num_heads=2, num_layers=1, num_decoder_layers=1,
      dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
      feed_forward_proj="gated-gelu", tie_word_embeddings=False)).eval()
  src, dst = root / "hf", root / "flan"
  model.save_pretrained(src, safe_serialization=True)
  shutil.copyfile(SPM, src / "spiece.model")
  (src / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "T5Tokenizer", "extra_ids": 0}))
  assert convert_cli.main(["from-hf", str(src), str(dst)]) == 0
  return dst


def test_prompt_ids_are_the_checkpoints_sentencepiece_encoding_of_the_prompt():
  processor = sentencepiece.SentencePieceProcessor(model_file=SPM)
  vocab = seqio.SentencePieceVocabulary(SPM)
  eval_suites.register_all(FIXTURES)
  try:
    for name in TASKS:
      exs = evaluator.load_examples(seqio.get_mixture_or_task(name), "validation", None, INPUT_LENGTH,
                                    vocabulary=vocab)
      assert exs, name
      for ex in exs:
        want = processor.encode(ex.prompt) + [1]
        assert ex.inputs == (want if not ex.truncated else want[-INPUT_LENGTH:]), name
        assert max(ex.inputs) < vocab.vocab_size                      # never the shipped 2,048-piece ids
  finally:
    eval_suites.register_all()


@pytest.mark.slow
def test_flan_jax_eval_scores_a_converted_t5_on_every_suite(converted, tmp_path):
  out = tmp_path / "eval"
  env = dict(os.environ, FLAN_JAX_DATA_DIR=str(FIXTURES), XLA_FLAGS="--xla_force_host_platform_device_count=1")
  proc = subprocess.run(
      [sys.executable, "-m", "flan_jax.cli", "eval", "--gin_file=gin/recipes/eval_paper_benchmarks.gin",
       f"--gin.CHECKPOINT_PATH='{converted}'", f"--gin.OUTPUT_DIR='{out}'",
       f"--gin.EVAL_MIXTURES_OR_TASKS={TASKS}", f"--gin.EVAL_INPUT_LENGTH={INPUT_LENGTH}",
       "--gin.MAX_DECODE_LEN=8", "--gin.EVAL_BATCH_SIZE=4", "--gin.SELF_CONSISTENCY=2"],
      cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  (found,) = out.glob("results_*.json")        # a from-hf checkpoint records no step: results_init.json
  results = json.loads(found.read_text())
  assert set(results["columns"]) == {"MMLU Direct", "MMLU CoT", "BBH Direct", "BBH CoT", "TyDiQA", "MGSM",
                                     "MGSM English"}
  tasks = results["tasks"]
  assert tasks["mmlu_anatomy_5shot_direct"]["method"] == "letter_loglikelihood"
  assert {t["scorer"] for t in tasks.values()} == {"mmlu_letter", "mmlu_cot", "bbh", "tydiqa", "mgsm"}
  # The 26-piece vocabulary makes long prompts: the report says how each suite's were fitted.
  assert tasks["mgsm_de_8shot_cot"]["fitting"]["lost_exemplars"] == 2
  assert set(results["fitting"]) == {"MMLU", "BBH", "TyDiQA", "MGSM"}
  assert results["self_consistency"] == {"samples": 2, "temperature": 0.7, "top_k": 40}
  assert set(results["self_consistency_columns"]) == {"MMLU CoT", "BBH CoT", "MGSM", "MGSM English"}
  table = (out / "results.md").read_text()
  assert "CoT + SC (2 samples, T=0.7)" in table and "- MGSM: 6 prompts at input length 384" in table
