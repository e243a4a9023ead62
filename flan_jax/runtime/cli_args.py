"""Command lines of the `flan-jax` subcommands whose modules import JAX.

`plan`, `flops`, `generate` and `convert` build their argparse parsers here, in a module
that imports neither JAX nor TensorFlow, so `flan-jax plan --help` answers at once
(`flan_jax/cli.py` prints it without importing `flan_jax.planning.plan`). The other subcommands'
modules are light already and keep their parsers; `train`, `eval` and `infer` take gin
flags only, and their `--help` is `gin_help` below.
"""
from __future__ import annotations

import argparse
import os
import re

from flan_jax.runtime import gin_utils

_RAW = argparse.RawDescriptionHelpFormatter
_GIN_EPILOG = ("gin: --gin_file=F (repeatable; shipped files resolve as gin/recipes/NAME.gin from any directory) "
               "and --gin.KEY=VALUE overrides, as for `flan-jax train`")


def plan_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="flan-jax plan", formatter_class=_RAW,
      usage="flan-jax plan --gin_file=RECIPE [--gin.KEY=VALUE ...] [--topology=T] [--mfu=F] [--compile | --search]",
      description="Per-chip memory and step time of a recipe on a TPU slice or GPU cluster, without hardware:\n"
                  "parameters, optimizer state, gradients and activations per device on the recipe's mesh,\n"
                  "and the smallest slice of the same family that fits. Exit status 1 if it does not fit.",
      epilog="examples:\n"
             "  flan-jax plan --gin_file=gin/recipes/flan_palm_540b.gin             # the recipe's TOPOLOGY\n"
             "  flan-jax plan --gin_file=gin/recipes/flan_t5_xl.gin --topology=v5p-64\n\n"
             "topologies: v2/v3/v4/v5p-N count TensorCores (v4-512 = 256 chips), v5e/v6e-N count chips,\n"
             "GPU clusters are h100xN, h200xN, a100xN (N GPUs).\n" + _GIN_EPILOG)
  p.add_argument("--gin_file", action="append", metavar="RECIPE", required=False,
                 help="recipe gin file (required; repeatable), e.g. gin/recipes/flan_t5_xl.gin")
  p.add_argument("--topology", default=None,
                 help="v4-512, v5p-1024, v5e-256, h100x64, ... (default: the recipe's TOPOLOGY macro)")
  p.add_argument("--mfu", type=float, default=0.5, help="model FLOPs utilisation assumed for step time (default 0.5)")
  p.add_argument("--compile", action="store_true",
                 help="also compile the trainer's own step with XLA:TPU for the slice (needs libtpu: "
                      "pip install -e \".[tpu]\"); prints the compiler's memory, FLOPs and collectives")
  p.add_argument("--search", action="store_true",
                 help="rank mesh / remat / microbatch settings analytically, compile the best few")
  p.add_argument("--num_slices", type=int, default=None, help="multi-slice: slices joined by DCN")
  p.add_argument("--compile_top", type=int, default=2, help="--search: how many settings to compile (default 2)")
  p.add_argument("--compile_effort", choices=("full", "fast"), default="full",
                 help="full (default): the trainer's exact program; fast: XLA spends less effort on speed, "
                      "~2x quicker to compile, but its peak memory can differ from the trainer's by ~8%%")
  return p


def flops_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="flan-jax flops", formatter_class=_RAW,
      description="FLOPs accounting of the fine-tuning recipes (the planner's and the trainer's MFU use the\n"
                  "same per-token figures).",
      epilog="example:\n  flan-jax flops --paper      # fine-tuning vs pre-training compute, the paper's Table 2\n"
             "Per-recipe FLOPs and step time on a topology: `flan-jax plan --gin_file=RECIPE`.")
  p.add_argument("--paper", action="store_true",
                 help="print Table 2 of the FLAN paper (fine-tuning vs pre-training compute) with our figures")
  return p


def generate_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="flan-jax generate", formatter_class=_RAW,
      description="Complete prompts with a checkpoint: one completion per line (newlines in it written as \\n).\n"
                  "The model and its vocabulary come from the checkpoint's model.json (old runs: config.gin).",
      epilog="examples:\n"
             "  flan-jax generate --checkpoint /tmp/flan_jax_quickstart \"Sort these words: pear apple fig\"\n"
             "  flan-jax generate --checkpoint CKPT --interactive              # one prompt per line until EOF\n"
             "  flan-jax generate --checkpoint CKPT --num_beams 4 \"PROMPT\" \"ANOTHER PROMPT\"")
  p.add_argument("prompts", nargs="*", metavar="PROMPT", help="prompts to complete (one completion line each)")
  p.add_argument("--checkpoint", required=True,
                 help="converted checkpoint, MODEL_DIR or run step directory (with model.json)")
  p.add_argument("--vocab", default=None,
                 help="SentencePiece model file (default: the one the checkpoint records in model.json)")
  p.add_argument("--interactive", action="store_true", help="read prompts from stdin, one per line, until EOF")
  p.add_argument("--max_decode_len", type=int, default=64,
                 help="most tokens generated per prompt (default 64, at most 4096)")
  p.add_argument("--max_input_length", type=int, default=2048,
                 help="most prompt tokens, EOS included (default 2048, at most 8192); a longer prompt is refused")
  p.add_argument("--num_beams", type=int, default=1, help="> 1: beam search with this many beams (default 1: greedy)")
  p.add_argument("--alpha", type=float, default=0.6, help="beam search length penalty, as T5X's (default 0.6)")
  p.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default); > 0: sampling")
  p.add_argument("--top_k", type=int, default=0, help="sampling: keep the k most likely tokens (0: all)")
  p.add_argument("--top_p", type=float, default=1.0, help="sampling: nucleus probability mass (1.0: all)")
  p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
  return p


def convert_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="flan-jax convert", formatter_class=_RAW,
      description="Convert T5 v1.1 / Flan-T5 checkpoints to and from Hugging Face (config.json + safetensors;\n"
                  "pickles are never read).",
      epilog="examples:\n"
             "  flan-jax convert from-hf /path/to/hf/flan-t5-base /ckpt/flan_t5_base\n"
             "  flan-jax convert to-hf /ckpt/flan_t5_base /tmp/hf_out\n"
             "`flan-jax convert from-hf --help` / `to-hf --help` describe each.")
  sub = p.add_subparsers(dest="command", required=True, metavar="{from-hf,to-hf,from-t5x}")
  s = sub.add_parser("from-hf", help="Hugging Face T5 directory (safetensors) -> flan_jax parameter checkpoint",
                     description="Hugging Face T5 directory -> flan_jax parameter checkpoint (params/) plus "
                                 "model.json with spiece.model; pass DST as INITIAL_CHECKPOINT_PATH.")
  s.add_argument("src", help="directory with config.json and model.safetensors (or a sharded index)")
  s.add_argument("dst", help="output directory (new or empty): params/, model.json and spiece.model")
  s.add_argument("--overwrite", action="store_true", help="replace a non-empty DST (never a training run or SRC)")
  s = sub.add_parser("to-hf", help="flan_jax checkpoint -> Hugging Face T5 directory",
                     description="flan_jax checkpoint -> Hugging Face T5 directory (config.json, model.safetensors, spiece.model, tokenizer_config.json).")
  s.add_argument("src", help="parameter checkpoint, run step directory or MODEL_DIR")
  s.add_argument("dst", help="output directory (new or empty): config.json, model.safetensors, spiece.model, "
                             "tokenizer_config.json")
  s.add_argument("--overwrite", action="store_true", help="replace a non-empty DST (never a training run or SRC)")
  s = sub.add_parser(
      "from-t5x", help="T5X checkpoint (msgpack + tensorstore, local or gs://) -> flan_jax parameter checkpoint",
      formatter_class=_RAW,
      description="T5X checkpoint -> flan_jax parameter checkpoint: params/, the Adafactor statistics T5X saved\n"
                  "(adafactor_moments/), model.json with the model (from the shapes, or the recipe's) and T5X's step,\n"
                  "and with --vocab its SentencePiece model. T5X checkpoints record no vocabulary. DST must be new\n"
                  "or empty; nothing is written unless every array was read and checked. A T5X checkpoint also\n"
                  "works directly as INITIAL_CHECKPOINT_PATH and with generate, infer, eval and to-hf.",
      epilog="example (the paper's starting point, T5 v1.1 LM-adapted XL, step 1,100,000):\n"
             "  flan-jax convert from-t5x gs://t5-data/pretrained_models/t5x/t5_1_1_lm100k_xl/checkpoint_1100000 \\\n"
             "      /ckpt/t5_1_1_lm100k_xl --gin_file=gin/recipes/flan_t5_xl.gin --vocab /path/to/spiece.model")
  s.add_argument("src", help="checkpoint_<step> directory (or its 'checkpoint' file, or a T5X model directory: "
                             "its newest checkpoint_<step>), local or gs://")
  s.add_argument("dst", help="output directory (new or empty): params/, adafactor_moments/, model.json")
  s.add_argument("--overwrite", action="store_true", help="replace a non-empty DST (never a training run or SRC)")
  s.add_argument("--vocab", default=None, help="the model's SentencePiece file, recorded in model.json (T5 and "
                                                "Flan-T5: the 32,000-piece cc_all.32000 model)")
  s.add_argument("--extra_ids", type=int, default=100,
                 help="sentinel ids after the SentencePiece pieces (default 100, as T5's vocabulary)")
  s.add_argument("--gin_file", action="append", default=None,
                 help="a recipe or gin/models file naming the model: the checkpoint's shapes are checked against "
                      "it and its other settings (activations, dtype, scan_layers) are kept")
  return p


# ---------------------------------------------------------------------------------------
# train / eval / infer: gin flags only; --help lists the run file's macros and the recipes.

RUN_FILES = {"train": "runs/finetune.gin", "eval": "runs/eval.gin", "infer": "runs/infer.gin"}
_SUMMARY = {
    "train": "Fine-tune a model (flan_jax.training.train.train); resumes from MODEL_DIR when it has a checkpoint.",
    "eval": "Evaluate a checkpoint on benchmark tasks (flan_jax.evaluation.evaluate.evaluate); results go to CHECKPOINT_PATH/eval.",
    "infer": "Decode a task or mixture to JSONL (flan_jax.inference.infer.infer), one line per example.",
}
_EXAMPLES = {
    "train": "flan-jax train --gin_file=gin/recipes/quickstart.gin --gin.MODEL_DIR=/tmp/flan_jax_quickstart",
    "eval": "flan-jax eval --gin_file=gin/recipes/quickstart_eval.gin --gin.CHECKPOINT_PATH=/tmp/flan_jax_quickstart",
    "infer": ("flan-jax infer --gin_file=gin/runs/infer.gin --gin.CHECKPOINT_PATH=/tmp/flan_jax_quickstart \\\n"
              "    --gin.MIXTURE_OR_TASK_NAME=flan_jax_embedded_heldout --gin.INFER_OUTPUT_DIR=/tmp/preds"),
}
def _read_gin_text(path: str, root: str) -> list[tuple[str, str, str]]:
  """(macro, value, comment) assignments of a gin file and its includes, in order, read as text."""
  if not os.path.isfile(path):
    return []
  return [(k, v, c) for k, v, c in gin_utils.gin_statements(gin_utils.gin_text(path, root))
          if gin_utils.MACRO_NAME.fullmatch(k)]


def _first_sentence(text: str, width: int = 100) -> str:
  """The first sentence of a gin file's leading comment, at most `width` characters."""
  words = []
  for line in text.splitlines():
    if not line.startswith("#") or line.lstrip("# ").startswith("flan-jax "):
      break
    words += line.lstrip("#").split()
  sentence = " ".join(words)
  sentence = re.split(r"(?<!et al)(?<=[a-z0-9)])\. ", sentence, maxsplit=1)[0].rstrip(".")
  return sentence if len(sentence) <= width else sentence[:width - 3].rsplit(" ", 1)[0] + " ..."


def _recipes(root: str, run_file: str) -> list[tuple[str, str]]:
  """(recipe file name, its first comment line) of the shipped recipes that include `run_file`."""
  out = []
  recipes = os.path.join(root, "recipes")
  for name in sorted(os.listdir(recipes)):
    if not name.endswith(".gin"):
      continue
    with open(os.path.join(recipes, name), encoding="utf-8") as f:
      text = f.read()
    includes = gin_utils.INCLUDE.findall("\n".join(line.strip() for line in text.splitlines()))
    if any(i == run_file or i.endswith("/" + run_file) for i in includes):
      out.append((name, _first_sentence(text)))
  return out


def gin_help(command: str, gin_files: list[str], gin_root: str) -> str:
  """`flan-jax train|eval|infer --help`: usage, the run file's macros with their defaults (or the
  values the given --gin_files set), and the shipped recipes that use this entry point."""
  run_file = RUN_FILES[command]
  macros = {}
  for name, value, comment in _read_gin_text(os.path.join(gin_root, run_file), gin_root):
    macros[name] = [value, comment, False]
  for f in gin_files:
    path = f if os.path.isfile(f) else None
    if path is None:
      stripped = f[len("gin/"):] if f.startswith("gin/") else f
      for candidate in (os.path.join(gin_root, stripped), os.path.join(gin_root, stripped + ".gin")):
        if os.path.isfile(candidate):
          path = candidate
          break
    if path is None:
      continue
    for name, value, comment in _read_gin_text(path, gin_root):
      if name in macros:
        macros[name][0], macros[name][2] = value, True
      else:
        macros[name] = [value, comment, True]
  extra = " [--print_config]" if command == "train" else ""
  lines = [f"usage: flan-jax {command} --gin_file=FILE [--gin_file=FILE ...] [--gin.KEY=VALUE ...]{extra}", "",
           _SUMMARY[command], "", "example:", "  " + _EXAMPLES[command], "",
           f"gin macros of gin/{run_file}" + (f" as {', '.join(gin_files)} set them" if gin_files else "")
           + " (override with --gin.NAME=VALUE; REQUIRED ones must be set by a recipe or a flag):"]
  width = max(len(n) for n in macros)
  for name, (value, comment, _) in macros.items():
    shown = "REQUIRED" if value == "%gin.REQUIRED" else value
    lines.append(f"  {name:<{width}}  {shown}" + (f"    # {comment}" if comment else ""))
  recipes = _recipes(gin_root, run_file)
  if recipes:
    lines += ["", "recipes that use it (--gin_file=gin/recipes/NAME):"]
    w = max(len(n) for n, _ in recipes)
    lines += [f"  {n:<{w}}  {about}" for n, about in recipes]
  lines += ["", "Bare paths and words are quoted for you (--gin.MODEL_DIR=/tmp/x); gin literals, %MACROS and "
            "@references pass through.", "Any configurable is bindable too, e.g. --gin.MeshConfig.model_parallel=2."]
  if command == "train":
    lines += ["--print_config prints the run config these files give (JSON, as MODEL_DIR/run_config.json "
              "will hold it) and exits before anything is built."]
  return "\n".join(lines)
