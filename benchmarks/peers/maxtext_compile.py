"""Compiles MaxText's own train step for a Flan-PaLM recipe with XLA:TPU (libtpu, no TPU) and
writes the optimised HLO and the compiler's memory figures, for `count_hlo.py` to count
with flan_jax's HLO counter.

MaxText at the commit these figures were made with needs Python >= 3.12, so this script runs
in an environment of its own (it imports nothing from flan_jax):

    git clone https://github.com/AI-Hypercomputer/maxtext /tmp/maxtext && git -C /tmp/maxtext checkout e591f30
    python3.12 -m venv /tmp/mt && /tmp/mt/bin/pip install jax==0.10.2 jaxlib==0.10.2 libtpu==0.0.42.1 \\
        flax==0.12.8 optax orbax-checkpoint omegaconf pydantic aqtp qwix tokamax drjax jaxtyping grain \\
        sentencepiece tiktoken tensorflow-cpu ml-collections absl-py pathwaysutils tensorboardx jsonlines \\
        fastapi uvicorn opentelemetry-api opentelemetry-sdk google-cloud-storage jinja2 huggingface_hub \\
        transformers pillow sympy ml-goodput-measurement
    PYTHONPATH=/tmp/maxtext/src /tmp/mt/bin/python benchmarks/peers/maxtext_compile.py --recipe flan_palm_62b \\
        --opt adamw --out /tmp/maxtext_62b_adamw
    python benchmarks/peers/count_hlo.py /tmp/maxtext_62b_adamw   # in flan_jax's environment

The model is flan_jax's PaLM recipe in MaxText's terms (gin/models/palm, gin/recipes): d_model,
heads of 256, one key/value head (multi-query), SwiGLU, RoPE, tied embeddings, vocabulary 256k,
bfloat16 activations and float32 weights, the recipe's batch, length 2560, slice, fsdp x tensor
mesh, remat and microbatches (`gradient_accumulation_steps`). MaxText's own choices stay: its
`llama2` decoder block (attention then MLP, where PaLM runs them in parallel: the same matmuls),
its attention ('autoselected': its Pallas kernels on TPU) and its optimizers (AdamW or SGD; its
Adafactor did not compile here). Flags beside the model's: `allow_split_physical_axes=True`
(the slice's mesh splits a physical axis) and `logical_axis_rules` that keep the single
key/value head unsharded (one head does not split over the tensor axis).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

RECIPES = {
    # name: (emb, heads, layers, mlp, batch, topology, fsdp, tensor, remat, microbatches). Full
    # remat in one batch: with remat "minimal" (its nearest to the 62B recipe's
    # dots_with_no_batch_dims) in 4 microbatches, MaxText needs 36.97 GiB of temporaries with
    # AdamW, over v4's 30.75 GiB.
    "flan_palm_62b": (8192, 32, 64, 32768, 32, "v4-128", 8, 8, "full", 1),
    "flan_palm_8b": (4096, 16, 32, 16384, 32, "v4-64", 8, 4, "full", 1),
}


def _base_config_one_kv_head(base: pathlib.Path, where: pathlib.Path) -> pathlib.Path:
  """MaxText's base.yml with the logical rules of the key/value heads (`kv_heads`,
  `activation_kv_heads`) mapped to no mesh axis: a single head cannot split over `tensor`.
  Written beside the outputs; the checkout is not touched."""
  lines = []
  for line in base.read_text().splitlines():
    stripped = line.strip()
    if stripped.startswith("['kv_heads',") or stripped.startswith("['activation_kv_heads',"):
      name = stripped.split(",")[0]
      line = line[:len(line) - len(line.lstrip())] + f"{name}, []],"
    lines.append(line)
  out = where / "maxtext_base_one_kv_head.yml"
  out.write_text("\n".join(lines) + "\n")
  return out


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--recipe", default="flan_palm_62b", choices=sorted(RECIPES))
  p.add_argument("--opt", default="adamw", choices=("adamw", "sgd", "adafactor"))
  p.add_argument("--remat", default=None, help="MaxText remat_policy (default: the recipe's equivalent)")
  p.add_argument("--microbatches", type=int, default=None)
  p.add_argument("--out", required=True, help="path prefix: writes <out>.hlo.txt and <out>.json")
  args = p.parse_args(argv)
  emb, heads, layers, mlp, batch, topo, fsdp, tensor, remat, micro = RECIPES[args.recipe]
  remat = args.remat or remat
  micro = args.microbatches or micro
  chips = int(topo.split("-")[1]) // 2  # v4-N: N cores, N/2 chips
  from maxtext.trainers.pre_train import train_compile
  import maxtext
  base = _base_config_one_kv_head(pathlib.Path(maxtext.__file__).parent / "configs" / "base.yml",
                                  pathlib.Path(args.out).parent)
  config = [
      "train_compile", str(base), f"compile_topology={topo}", "compile_topology_num_slices=1",
      f"per_device_batch_size={batch / chips}", "max_target_length=2560",
      f"base_emb_dim={emb}", f"base_num_query_heads={heads}", "base_num_kv_heads=1", "head_dim=256",
      f"base_mlp_dim={mlp}", f"base_num_decoder_layers={layers}", "vocab_size=256000",
      "mlp_activations=['silu','linear']", "logits_via_embedding=True", "dropout_rate=0.05",
      "dtype=bfloat16", "weight_dtype=float32", f"remat_policy={remat}", f"gradient_accumulation_steps={micro}",
      f"opt_type={args.opt}", f"ici_fsdp_parallelism={fsdp}", f"ici_tensor_parallelism={tensor}",
      "allow_split_physical_axes=True", "enable_checkpointing=False", "run_name=peer_compile",
      "base_output_directory=/tmp/maxtext_peer", "dataset_type=synthetic", "scan_layers=True",
      # Its Pallas attention shards the key/value heads over `tensor`, which one head cannot
      # fill: XLA attention, as its `dot_product`.
      "attention=dot_product",
  ]
  captured = {}
  real = train_compile.jit_and_compile

  def capture(*a, **k):
    t0 = time.perf_counter()
    compiled = real(*a, **k)
    captured["seconds"] = time.perf_counter() - t0
    captured["compiled"] = compiled
    return compiled

  train_compile.jit_and_compile = capture
  train_compile.main(config)
  compiled = captured["compiled"]
  mem = compiled.memory_analysis()
  out = pathlib.Path(args.out)
  out.with_suffix(".hlo.txt").write_text(compiled.as_text())
  out.with_suffix(".json").write_text(json.dumps({
      "peer": "maxtext", "what": f"MaxText e591f30 {args.recipe}, {args.opt}, remat {remat}, {micro} microbatches",
      "recipe": args.recipe, "topology": topo, "mesh": {"data": 1, "fsdp": fsdp, "model": tensor},
      "peak_bytes": float(mem.peak_memory_in_bytes), "compile_s": captured["seconds"], "argv": config[1:]},
      indent=1))
  print(f"wrote {out.with_suffix('.hlo.txt')} and {out.with_suffix('.json')}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
