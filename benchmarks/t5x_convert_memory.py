"""Peak memory of `flan-jax convert from-t5x` on a synthetic 1B-parameter T5X checkpoint.

The checkpoint is written here in T5X's layout (msgpack index + one zarr array per leaf, as
the reader's tests check against T5X's own output), for a T5 v1.1 of d_model 2048, 32 heads
of 64, d_ff 5120, 8+8 layers, vocab 32128 (1.04B parameters, float32, uncompressed zarr), with
factored Adafactor statistics as T5X saves them. The conversion then runs in a fresh process;
its peak RSS (getrusage of the child) is compared with the bound the reader is built for:

    bound = model + 2 x the largest single array

(the converted parameters are held once while orbax writes them; the array being read and its
converted copy are the only other large buffers). The process's own footprint (Python, jax,
orbax, tensorstore: the peak RSS of the same conversion of a 128-wide checkpoint) is measured
too and reported beside. Prints seconds, peak RSS, the bound and the ratio of the growth
(peak - own footprint) to the bound (<= 1.0 meets it).

    python benchmarks/t5x_convert_memory.py [--layers 8] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

BIG = dict(D=2048, H=32, K=64, F=5120, V=32128)
TINY = dict(D=128, H=2, K=64, F=128, V=128)  # the same program on almost no data: the process's own RSS


def _shapes(layers: int, D: int, H: int, K: int, F: int, V: int) -> dict[str, tuple[int, ...]]:
  out = {"token_embedder/embedding": (V, D), "decoder/logits_dense/kernel": (D, V),
         "encoder/relpos_bias/rel_embedding": (H, 32), "decoder/relpos_bias/rel_embedding": (H, 32),
         "encoder/encoder_norm/scale": (D,), "decoder/decoder_norm/scale": (D,)}
  blocks = {"encoder": ("attention",), "decoder": ("self_attention", "encoder_decoder_attention")}
  for stack, attns in blocks.items():
    for i in range(layers):
      p = f"{stack}/layers_{i}"
      for a in attns:
        for n in ("query", "key", "value"):
          out[f"{p}/{a}/{n}/kernel"] = (D, H * K)
        out[f"{p}/{a}/out/kernel"] = (H * K, D)
      for n in ("wi_0", "wi_1"):
        out[f"{p}/mlp/{n}/kernel"] = (D, F)
      out[f"{p}/mlp/wo/kernel"] = (F, D)
      norms = ["pre_attention_layer_norm", "pre_mlp_layer_norm"] if stack == "encoder" else [
          "pre_self_attention_layer_norm", "pre_cross_attention_layer_norm", "pre_mlp_layer_norm"]
      for n in norms:
        out[f"{p}/{n}/scale"] = (D,)
  return out


def write_checkpoint(directory: str, layers: int, dims: dict) -> tuple[int, int]:
  """A T5X checkpoint_1100000 in DIRECTORY; returns (parameters, largest array's bytes)."""
  import tensorstore as ts
  from flax import serialization, traverse_util
  ckpt = os.path.join(directory, "checkpoint_1100000")
  os.makedirs(ckpt)
  rng = np.random.default_rng(0)
  shapes = _shapes(layers, **dims)
  flat: dict[tuple[str, ...], object] = {}

  def put(name: str, arr: np.ndarray):
    rel = name.replace("/", ".")
    spec = {"driver": "zarr", "dtype": "float32", "kvstore": {"driver": "file", "path": rel},
            "metadata": {"shape": list(arr.shape), "chunks": list(arr.shape), "compressor": None}}
    full = json.loads(json.dumps(spec))
    full["kvstore"]["path"] = os.path.join(ckpt, rel)
    ts.open(full, create=True, open=True).result().write(arr).result()
    flat[tuple(name.split("/"))] = spec

  for name, shape in shapes.items():
    put("target/" + name, rng.standard_normal(shape, dtype=np.float32))
    if len(shape) == 2 and min(shape) >= 128:  # factored as T5X's heuristic does
      rows, cols = (0, 1) if shape[0] <= shape[1] else (1, 0)
      v_row = np.abs(rng.standard_normal(shape[rows], dtype=np.float32))
      v_col = np.abs(rng.standard_normal(shape[cols], dtype=np.float32))
      flat[tuple(f"state/param_states/{name}/v_row".split("/"))] = v_row
      flat[tuple(f"state/param_states/{name}/v_col".split("/"))] = v_col
      flat[tuple(f"state/param_states/{name}/v".split("/"))] = np.zeros((1,), np.float32)
    else:
      flat[tuple(f"state/param_states/{name}/v".split("/"))] = np.abs(rng.standard_normal(shape, dtype=np.float32))
      for n in ("v_row", "v_col"):
        flat[tuple(f"state/param_states/{name}/{n}".split("/"))] = np.zeros((1,), np.float32)
    flat[tuple(f"state/param_states/{name}/m".split("/"))] = np.zeros((1,), np.float32)
  flat[("state", "step")] = np.asarray(1_100_000, np.int32)
  with open(os.path.join(ckpt, "checkpoint"), "wb") as f:
    f.write(serialization.msgpack_serialize({"version": 3, "optimizer": traverse_util.unflatten_dict(flat)}))
  params = sum(int(np.prod(s)) for s in shapes.values())
  return params, max(int(np.prod(s)) for s in shapes.values()) * 4


def _convert(root: str, name: str, layers: int, dims: dict, params: int | None = None) -> tuple[float, int, str]:
  """(seconds, peak RSS in bytes, stdout) of `flan-jax convert from-t5x` in a fresh process."""
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  t0 = time.perf_counter()
  with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
    proc = subprocess.Popen([sys.executable, "-m", "flan_jax.cli", "convert", "from-t5x",
                             os.path.join(root, name, "checkpoint_1100000"), os.path.join(root, name + "_out")],
                            stdout=out, stderr=err, text=True, env=env)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    out.seek(0)
    err.seek(0)
    if proc.returncode:
      raise SystemExit(f"from-t5x failed:\n{err.read()[-2000:]}")
    return seconds, usage.ru_maxrss * 1024, out.read().strip()


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--layers", type=int, default=8, help="encoder and decoder layers (8: 1.04B parameters)")
  parser.add_argument("--keep", default=None, help="write the checkpoint and output here and keep them")
  parser.add_argument("--write", default=None, help=argparse.SUPPRESS)  # the child that writes the checkpoints
  args = parser.parse_args()
  if args.write:
    write_checkpoint(os.path.join(args.write, "big"), args.layers, BIG)
    write_checkpoint(os.path.join(args.write, "tiny"), 1, TINY)
    return 0
  root = args.keep or tempfile.mkdtemp(prefix="t5x_convert_bench_")
  try:
    t0 = time.perf_counter()
    # Written by a child process: a child's peak RSS starts from its parent's, which must stay small.
    subprocess.run([sys.executable, __file__, "--write", root, "--layers", str(args.layers)], check=True)
    params = sum(int(np.prod(s)) for s in _shapes(args.layers, **BIG).values())
    largest = max(int(np.prod(s)) for s in _shapes(args.layers, **BIG).values()) * 4
    print(f"synthetic T5X checkpoint: {params / 1e9:.2f}B parameters, {params * 4 / 2**30:.2f} GiB float32, "
          f"largest array {largest / 2**20:.0f} MiB (written in {time.perf_counter() - t0:.0f}s)")
    own = _convert(root, "tiny", 1, TINY)[1]
    seconds, peak, out = _convert(root, "big", args.layers, BIG, params)
    bound = params * 4 + 2 * largest
    print(out)
    print(f"from-t5x: {seconds:.1f}s, peak RSS {peak / 2**30:.2f} GiB (the process alone: {own / 2**30:.2f} GiB); "
          f"bound (model + 2 x largest array) {bound / 2**30:.2f} GiB; "
          f"ratio (peak - process) / bound {(peak - own) / bound:.2f}, peak / (bound + process) "
          f"{peak / (bound + own):.2f}")
    return 0
  finally:
    if not args.keep:
      shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
  sys.exit(main())
