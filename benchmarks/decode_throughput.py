"""Greedy decoding throughput: flan_jax against transformers' PyTorch `generate`, same run.

Both decode with the same weights (a random T5 v1.1 of d_model 256, d_ff 1024, 4+4 layers,
4 heads of 64, vocab 32128, converted with `flan_jax.checkpointing.hf.params_to_hf`) the same
batch of 8 prompts of 64 tokens, greedily, 64 new tokens each: EOS is suppressed until
then (`min_decode_len` / `min_new_tokens`), so both generate exactly 8 x 64 tokens. Both
use their KV caches; fp32 on this machine's CPU. Timed rounds alternate between the two
(so a busy machine slows both alike); the median round counts. Prints tokens/s of each,
the ratio, and how many generated tokens the two agree on.

Both get the same number of CPU threads (`--threads`, default 1: torch's intra-op threads,
XLA's Eigen pool; 0 = all cores for both). One thread each is the default because on a
shared or busy machine extra threads mostly wait for each other: there both frameworks
decode several times faster single-threaded.

    python benchmarks/decode_throughput.py [--rounds 5] [--threads N]

On an accelerator, T5 v1.1 shapes (prompt = the preset's input length, new tokens = its target
length, batch its batch), bf16 activations in both (flan_jax's T5Config.dtype, transformers under
torch.autocast); it imports what benchmarks/presets.py lists, never seqio or TensorFlow:

    python benchmarks/decode_throughput.py --preset t5_large --dtype bf16
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

import presets  # noqa: F401  (sys.path and environment first)

PRESET = presets.with_overrides(presets.PRESETS["cpu"], batch=8, inputs=64, targets=64)
SHAPE = dict(vocab=PRESET.vocab, d_model=PRESET.d_model, d_ff=PRESET.d_ff, layers=PRESET.layers,
             heads=PRESET.heads, d_kv=PRESET.d_kv)
BATCH, PROMPT, NEW = PRESET.batch, PRESET.inputs, PRESET.targets


def make_prompts(seed=0):
  return np.random.default_rng(seed).integers(2, SHAPE["vocab"], (BATCH, PROMPT)).astype(np.int32)


def t5_config(dtype: str = "float32"):
  return presets.Preset(**SHAPE, batch=BATCH, inputs=PROMPT, targets=NEW).flan_jax_config(dtype)


def use_preset(p: presets.Preset) -> None:
  """Points the module's shape and sizes at a preset (main's --preset)."""
  global BATCH, PROMPT, NEW
  SHAPE.update(vocab=p.vocab, d_model=p.d_model, d_ff=p.d_ff, layers=p.layers, heads=p.heads, d_kv=p.d_kv)
  BATCH, PROMPT, NEW = p.batch, p.inputs, p.targets


def flan_jax_runner(cfg, params):
  import jax
  from flan_jax.inference import decoding
  from flan_jax.core import partitioning
  from flan_jax.models import t5
  dec = decoding.SequenceDecoder(t5.Transformer(cfg), partitioning.make_mesh(devices=jax.devices()[:1]))
  p = dec.put_params(params)
  config = decoding.DecodeConfig(max_decode_len=NEW, min_decode_len=NEW)
  prompts = make_prompts()
  return lambda: dec.decode(p, prompts, config).tokens


def transformers_runner(cfg, params, hf_dir):
  import torch
  import transformers
  from flan_jax.checkpointing import hf
  transformers.logging.set_verbosity_error()
  # Through files, as users convert: a T5ForConditionalGeneration built from a config ties
  # lm_head to the embedding, which T5 v1.1 does not.
  hf.write_hf_dir(hf_dir, params, cfg)
  device = presets.torch_device()
  model = transformers.T5ForConditionalGeneration.from_pretrained(hf_dir).to(device).eval()
  prompts = torch.from_numpy(make_prompts().astype(np.int64)).to(device)
  mask = torch.ones_like(prompts)
  dtype = cfg.dtype

  def run():
    with torch.inference_mode(), torch.autocast(device.type, dtype=getattr(torch, dtype),
                                                enabled=dtype != "float32"):
      out = model.generate(input_ids=prompts, attention_mask=mask, max_new_tokens=NEW, min_new_tokens=NEW,
                           do_sample=False, num_beams=1)
    return out[:, 1:].cpu().numpy()
  return run


def timed(fn):
  t0 = time.perf_counter()
  out = fn()
  return time.perf_counter() - t0, out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--preset", choices=sorted(presets.PRESETS),
                      help="model shape; batch, prompt (inputs) and new tokens (targets) from the preset")
  parser.add_argument("--dtype", default="fp32", choices=sorted(presets.DTYPES), help="activation dtype of both")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--threads", type=int, default=1, help="CPU threads of each framework; 0: all cores")
  args = parser.parse_args(argv)
  if args.preset:
    use_preset(presets.PRESETS[args.preset])
  if args.threads == 1:  # before JAX starts its CPU backend
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
  import jax
  import torch
  from flan_jax.models import t5
  cfg = t5_config(presets.DTYPES[args.dtype])
  x = jax.numpy.ones((1, 1), jax.numpy.int32)
  params = jax.device_get(jax.jit(t5.Transformer(t5_config()).init)(jax.random.key(0), x, x)["params"])  # fp32
  print(f"T5 v1.1 d_model {SHAPE['d_model']}, d_ff {SHAPE['d_ff']}, {SHAPE['layers']}+{SHAPE['layers']} layers, "
        f"{SHAPE['heads']} heads, vocab {SHAPE['vocab']}; greedy, batch {BATCH} x {PROMPT} prompt tokens, "
        f"{NEW} new tokens each; {args.dtype}; {jax.devices()[0].device_kind}; {args.threads or os.cpu_count()} CPU thread(s) each of {os.cpu_count()} "
        f"cores; median of {args.rounds} alternating rounds",
        flush=True)
  with tempfile.TemporaryDirectory() as hf_dir:
    runners = {"flan_jax": flan_jax_runner(cfg, params), "transformers": transformers_runner(cfg, params, hf_dir)}
  outputs = {}
  torch.set_num_threads(args.threads or os.cpu_count())
  for name, run in runners.items():  # warm-up (compilation for flan_jax)
    dt, outputs[name] = timed(run)
    print(f"  warm-up {name}: {dt:.2f}s", flush=True)
  times = {name: [] for name in runners}
  for _ in range(args.rounds):
    for name, run in runners.items():
      times[name].append(timed(run)[0])
  tps = {name: BATCH * NEW / statistics.median(t) for name, t in times.items()}
  for name in runners:
    print(f"{name:<13} {tps[name]:10,.0f} tokens/s   (rounds: {', '.join(f'{t:.2f}s' for t in times[name])})")
  print(f"ratio flan_jax / transformers: {tps['flan_jax'] / tps['transformers']:.2f}x")
  a, b = outputs["flan_jax"], outputs["transformers"]
  same = np.cumprod(a == b[:, :a.shape[1]], axis=1).sum()  # agreeing prefix per row
  print(f"identical generated prefix: {same} of {a.size} tokens ({np.mean((a == b).all(1)) * 100:.0f}% of rows "
        "fully equal; fp32 rounding may flip a near-tie and everything after it)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
