"""Shapes the throughput benchmarks share, and what lets them run on a stock accelerator image.

The benchmarks import jax, flax, optax, orbax, gin-config, numpy, torch and transformers, and
flan_jax's model/trainer modules directly (never seqio or TensorFlow), so a GPU image with
those preinstalled runs them from a checkout with one command (`pip install gin-config` if it
lacks that small wheel):

    python benchmarks/train_throughput.py --preset t5_large --dtype bf16

T5 v1.1 sizes are those of gin/models/t5_1_1/{base,large,xl}.gin (checked by
tests/test_benchmarks.py); batch and lengths of the accelerator presets fill one 80-141 GB GPU.
"""
from __future__ import annotations

import dataclasses
import os
import sys

# Run from a checkout without installing: the repository root holds the flan_jax package.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(1, _ROOT)
# Both frameworks share one accelerator: JAX must not reserve 75% of its memory up front, and
# transformers must not look for TensorFlow or Flax.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("USE_FLAX", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@dataclasses.dataclass(frozen=True)
class Preset:
  d_model: int
  d_ff: int
  layers: int
  heads: int
  batch: int
  inputs: int
  targets: int
  d_kv: int = 64
  vocab: int = 32128

  def flan_jax_config(self, dtype: str = "float32", dropout: float = 0.0):
    from flan_jax.models import t5
    return t5.T5Config(vocab_size=self.vocab, emb_dim=self.d_model, mlp_dim=self.d_ff, num_heads=self.heads,
                       head_dim=self.d_kv, num_encoder_layers=self.layers, num_decoder_layers=self.layers,
                       dropout_rate=dropout, dtype=dtype)

  def transformers_config(self):
    import transformers
    return transformers.T5Config(vocab_size=self.vocab, d_model=self.d_model, d_ff=self.d_ff, d_kv=self.d_kv,
                                 num_heads=self.heads, num_layers=self.layers, num_decoder_layers=self.layers,
                                 feed_forward_proj="gated-gelu", tie_word_embeddings=False, dropout_rate=0.0,
                                 decoder_start_token_id=0)

  def describe(self) -> str:
    return (f"T5 v1.1 d_model {self.d_model}, d_ff {self.d_ff}, {self.layers}+{self.layers} layers, "
            f"{self.heads} heads of {self.d_kv}, vocab {self.vocab}")


PRESETS = {
    # This machine's CPU benchmark (the figures in the README's Benchmarks section).
    "cpu": Preset(d_model=256, d_ff=1024, layers=4, heads=4, batch=8, inputs=256, targets=64),
    # For the test suite: the --preset path at a size a CPU runs in seconds.
    "tiny": Preset(d_model=64, d_ff=128, layers=2, heads=2, d_kv=32, vocab=512, batch=2, inputs=32, targets=8),
    # T5 v1.1 / Flan-T5 shapes, for one accelerator.
    "t5_base": Preset(d_model=768, d_ff=2048, layers=12, heads=12, batch=128, inputs=512, targets=128),
    "t5_large": Preset(d_model=1024, d_ff=2816, layers=24, heads=16, batch=64, inputs=512, targets=128),
    "t5_xl": Preset(d_model=2048, d_ff=5120, layers=24, heads=32, batch=32, inputs=512, targets=128),
}
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def with_overrides(preset: Preset, batch: int | None = None, inputs: int | None = None,
                   targets: int | None = None) -> Preset:
  return dataclasses.replace(preset, **{k: v for k, v in dict(batch=batch, inputs=inputs, targets=targets).items()
                                        if v is not None})


def torch_device():
  import torch
  return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def synchronize(device) -> None:
  import torch
  if device.type == "cuda":
    torch.cuda.synchronize()


def matmul_peak(dtype: str = "float32", n: int | None = None) -> dict[str, float]:
  """FLOP/s of one n x n x n matmul in `dtype`, best of 5, in JAX and in torch on the devices the
  benchmark uses: the practical ceiling of this machine for both frameworks."""
  import time

  import jax
  import jax.numpy as jnp
  import numpy as np
  import torch
  device = torch_device()
  n = n or (8192 if device.type == "cuda" else 2048)
  a = np.random.default_rng(0).random((n, n), np.float32)
  ja = jnp.asarray(a, dtype=jnp.dtype(dtype))
  ta = torch.from_numpy(a).to(device=device, dtype=getattr(torch, dtype))
  mm = jax.jit(jnp.matmul)

  def torch_mm():
    out = ta @ ta
    synchronize(device)
    return out

  best = {}
  for name, fn in (("jax", lambda: mm(ja, ja).block_until_ready()), ("torch", torch_mm)):
    fn()
    times = []
    for _ in range(5):
      t0 = time.perf_counter()
      fn()
      times.append(time.perf_counter() - t0)
    best[name] = 2 * n ** 3 / min(times)
  return best
