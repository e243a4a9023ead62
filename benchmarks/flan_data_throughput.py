"""Training throughput on rendered Flan examples: flan_jax packing against transformers' dynamic padding.

What a user feels on real instruction data, where prompts run from a few tokens to the full
input length. Both frameworks train the same T5 v1.1 shape as benchmarks/train_throughput.py
(d_model 256, d_ff 1024, 4+4 layers, 4 heads of 64, vocab 32128; Adafactor factored, decay
0.8, clipping 1.0, no momentum, lr 1e-3; fp32; this machine's CPU, glibc keeping freed memory)
on the same examples in the same order:

  - the examples: the embedded mixture's training tasks (`flan_jax_embedded`, all its format
    variants) plus the CoT collection's TSV rows (../shared/data/flan_cot, or --cot_dir) in
    their zero-shot and few-shot CoT formats (the datasets whose TSV is there), rendered through our templates, tokenized with the
    shipped SentencePiece vocabulary, inputs cut to 512 and targets to 128 tokens, shuffled once;
  - flan_jax: seqio's EncDecFeatureConverter with packing (as `flan-jax train` does), rows of
    512 input + 128 target tokens, --rows per batch;
  - transformers: T5ForConditionalGeneration with batches of --batch examples padded to the
    longest in each batch by `DataCollatorForSeq2Seq` (labels padded with -100), the usual recipe.

Both input pipelines run before timing (only train steps are timed). Each timed round trains
flan_jax on the next --steps packed batches and transformers on exactly the examples those
batches hold, so a busy machine slows both alike; the median round counts. Prints examples/s,
non-padding tokens/s and padding fraction of each, and the ratios.

    python benchmarks/flan_data_throughput.py [--steps 4] [--rounds 3] [--rows 8] [--batch 8]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np

import presets  # noqa: F401  (sys.path and environment first)

PRESET = presets.PRESETS["cpu"]
INPUTS, TARGETS = 512, 128
EOS = 1
SHARED_COT = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "flan_cot"


def rendered_examples(cot_dir: pathlib.Path, per_task: int, seed: int = 0) -> list[tuple[str, str, str]]:
  """(task, inputs, targets) texts: up to `per_task` training examples of each format variant of the
  embedded mixture's tasks and of the CoT tasks, shuffled."""
  import seqio
  from flan_jax.tasks import api, embedded
  from flan_jax.tasks.collections import cot
  with tempfile.TemporaryDirectory() as root:
    os.symlink(cot_dir, os.path.join(root, "cot"))
    present = {p.name.removesuffix("_train.tsv") for p in cot_dir.glob("*_train.tsv")}
    cot_tasks = [n for n in cot.register(data_dir=root) if n.endswith(("_zscot", "_fscot"))
                 and n.removeprefix("cot_").rsplit("_", 1)[0] in present]
    names = [t.name for t in seqio.get_mixture_or_task(embedded.TRAIN_MIXTURE).tasks] + cot_tasks
    rows = [(name, r.inputs, r.targets) for name in names for r in api.render_examples(name, "train", per_task)]
  order = np.random.default_rng(seed).permutation(len(rows))
  return [rows[i] for i in order]


def tokenize(rows):
  """[(inputs ids, targets ids)] with EOS, cut to INPUTS / TARGETS tokens (EOS kept last)."""
  from flan_jax.tasks import vocab
  v = vocab.default_vocabulary()
  out = []
  for _, inputs, targets in rows:
    i = list(v.encode(inputs))[:INPUTS - 1] + [EOS]
    t = list(v.encode(targets))[:TARGETS - 1] + [EOS]
    out.append((np.asarray(i, np.int32), np.asarray(t, np.int32)))
  return out


def packed_batches(examples, rows: int) -> list[dict[str, np.ndarray]]:
  """seqio's packing EncDec converter over the examples in order, `rows` packed rows per batch."""
  import seqio
  import tensorflow as tf
  ds = tf.data.Dataset.from_generator(
      lambda: ({"inputs": i, "targets": t} for i, t in examples),
      output_signature={"inputs": tf.TensorSpec([None], tf.int32), "targets": tf.TensorSpec([None], tf.int32)})
  converter = seqio.EncDecFeatureConverter(pack=True)
  ds = converter(ds, {"inputs": INPUTS, "targets": TARGETS}).batch(rows, drop_remainder=True)
  return list(ds.as_numpy_iterator())


def examples_in(batch) -> int:
  """Examples packed into a batch: distinct non-zero segment ids per row."""
  seg = batch["decoder_segment_ids"]
  return int(sum(len(np.unique(r[r > 0])) for r in seg))


def non_padding(batch) -> int:
  return int(np.count_nonzero(batch["encoder_input_tokens"]) + np.count_nonzero(batch["decoder_target_tokens"]))


def flan_jax_runner(example_batch):
  import jax
  from flan_jax.core import optim, partitioning
  from flan_jax.training import trainer
  from flan_jax.models import t5
  mesh = partitioning.make_mesh(partitioning.MeshConfig(), jax.devices()[:1])
  tx, lr = optim.make_optimizer(optim.OptimizerConfig(learning_rate=1e-3), total_steps=1)  # constant lr
  shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in example_batch.items()}
  tr = trainer.Trainer(t5.Transformer(PRESET.flan_jax_config()), tx, mesh, shapes, learning_rate_fn=lr,
                       loss=trainer.LossConfig(z_loss=0.0))
  carry = {"state": tr.init_state(0), "loss": None}

  def run(batches):
    state = carry["state"]
    for b in batches:
      state, metrics = tr.step(state, trainer.global_batch(b, tr.batch_shardings))
    carry.update(state=state, loss=float(jax.block_until_ready(metrics)["loss"]))

  return run, lambda: carry["loss"]


def padded_batches(examples, batch: int):
  """Batches of `batch` examples padded to their longest by transformers' DataCollatorForSeq2Seq."""
  import transformers
  from flan_jax.tasks import vocab
  tokenizer = transformers.T5Tokenizer(vocab_file=str(vocab.DEFAULT_SPM_PATH), extra_ids=0, legacy=True)
  collator = transformers.DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100,
                                                 return_tensors="pt")
  out = []
  for start in range(0, len(examples), batch):
    feats = [{"input_ids": i.tolist(), "attention_mask": [1] * len(i), "labels": t.tolist()}
             for i, t in examples[start:start + batch]]
    out.append(collator(feats))
  return out


def transformers_runner():
  import torch
  import transformers
  from transformers.optimization import Adafactor
  torch.manual_seed(0)
  model = transformers.T5ForConditionalGeneration(PRESET.transformers_config()).train()
  opt = Adafactor(model.parameters(), lr=1e-3, relative_step=False, scale_parameter=True, warmup_init=False,
                  decay_rate=-0.8, clip_threshold=1.0, beta1=None)
  last = {}

  def run(batches):
    for b in batches:
      out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"])
      out.loss.backward()
      opt.step()
      opt.zero_grad(set_to_none=True)
    last["loss"] = float(out.loss.detach())

  return run, lambda: last["loss"]


def padded_stats(batches) -> tuple[int, int]:
  """(non-padding tokens, token slots) of padded batches: inputs plus labels."""
  real = sum(int(b["attention_mask"].sum()) + int((b["labels"] != -100).sum()) for b in batches)
  slots = sum(b["input_ids"].numel() + b["labels"].numel() for b in batches)
  return real, slots


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=4, help="flan_jax packed batches per timed round")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--warmup", type=int, default=1, help="untimed packed batches first (compilation)")
  parser.add_argument("--rows", type=int, default=8, help="flan_jax: packed rows per batch")
  parser.add_argument("--batch", type=int, default=8, help="transformers: examples per padded batch")
  parser.add_argument("--per_task", type=int, default=40, help="examples rendered per task variant")
  parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
  parser.add_argument("--cot_dir", type=pathlib.Path, default=SHARED_COT, help="FLAN's CoT TSVs (*_train.tsv)")
  args = parser.parse_args(argv)
  if not args.cot_dir.is_dir():
    parser.error(f"--cot_dir={args.cot_dir} is not a directory of FLAN's CoT TSVs (e.g. ../shared/data/flan_cot)")
  from flan_jax.runtime import host_memory
  retained = host_memory.retain_freed_memory()  # before torch or XLA start threads
  import torch
  torch.set_num_threads(args.threads)

  t0 = time.perf_counter()
  rows = rendered_examples(args.cot_dir, args.per_task)
  examples = tokenize(rows)
  packed = packed_batches(examples, args.rows)
  need = args.warmup + args.steps * args.rounds
  if len(packed) < need:
    parser.error(f"{len(rows)} examples make {len(packed)} packed batches; {need} needed: raise --per_task")
  counts = [examples_in(b) for b in packed]
  if sum(counts[:need]) > len(examples):
    raise AssertionError("packing produced more examples than it was given")
  # Same examples, same order: round r of transformers trains on the examples of flan_jax's batches of round r.
  bounds = np.cumsum([0] + counts[:need])
  groups = [(0, args.warmup)] + [(args.warmup + r * args.steps, args.warmup + (r + 1) * args.steps)
                                 for r in range(args.rounds)]
  jax_rounds = [packed[a:b] for a, b in groups]
  hf_rounds = [padded_batches(examples[bounds[a]:bounds[b]], args.batch) for a, b in groups]
  n_ex = [int(bounds[b] - bounds[a]) for a, b in groups]
  tasks = sorted({t for t, _, _ in rows})
  lens_in = np.array([len(i) for i, _ in examples])
  lens_out = np.array([len(t) for _, t in examples])
  print(f"{len(rows)} rendered examples of {len(tasks)} task variants ({sum(t.startswith('cot_') for t in tasks)} "
        f"CoT), tokens per example: inputs median {int(np.median(lens_in))} (max {lens_in.max()}), targets median "
        f"{int(np.median(lens_out))} (max {lens_out.max()}); prepared in {time.perf_counter() - t0:.0f}s", flush=True)
  print(f"{PRESET.describe()}; Adafactor; fp32; {os.cpu_count()} CPU cores (load {os.getloadavg()[0]:.1f}); "
        f"flan_jax: packed rows of {INPUTS}+{TARGETS} tokens, {args.rows} per batch; transformers: "
        f"{args.batch} examples per batch padded to the longest; median of {args.rounds} alternating rounds of "
        f"{args.steps} packed batches (~{statistics.mean(n_ex[1:]):.0f} examples) after {n_ex[0]} examples of "
        f"warm-up; freed memory {'retained' if retained else 'returned to the OS'}", flush=True)

  runners = {"flan_jax": flan_jax_runner(packed[0]), "transformers": transformers_runner()}
  data = {"flan_jax": jax_rounds, "transformers": hf_rounds}
  for name, (run, _) in runners.items():
    run(data[name][0])
  times = {name: [] for name in runners}
  for r in range(1, args.rounds + 1):
    for name, (run, _) in runners.items():
      t = time.perf_counter()
      run(data[name][r])
      times[name].append(time.perf_counter() - t)

  timed = slice(1, None)
  jax_real = sum(non_padding(b) for rnd in jax_rounds[timed] for b in rnd)
  jax_slots = sum(b["encoder_input_tokens"].size + b["decoder_target_tokens"].size
                  for rnd in jax_rounds[timed] for b in rnd)
  hf_real, hf_slots = padded_stats([b for rnd in hf_rounds[timed] for b in rnd])
  if hf_real != jax_real:
    raise AssertionError(f"the two did not train on the same tokens: {jax_real} vs {hf_real}")
  rounds_ex = n_ex[timed]
  eps, tps, pad = {}, {}, {"flan_jax": 1 - jax_real / jax_slots, "transformers": 1 - hf_real / hf_slots}
  for name, ts in times.items():
    per_round = [n / t for n, t in zip(rounds_ex, ts)]
    eps[name] = statistics.median(per_round)
    tps[name] = eps[name] * jax_real / sum(rounds_ex)
  for name, (_, loss) in runners.items():
    print(f"{name:<13} {eps[name]:8.2f} examples/s {tps[name]:10,.0f} non-padding tokens/s   padding "
          f"{pad[name]:5.1%}   (last loss {loss():.3f}; rounds: {', '.join(f'{t:.1f}s' for t in times[name])})",
          flush=True)
  print(f"ratio flan_jax / transformers: {eps['flan_jax'] / eps['transformers']:.2f}x examples/s "
        f"(same {sum(rounds_ex)} examples, {jax_real:,} real tokens)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
