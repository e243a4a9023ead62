"""flan_jax: JAX-native instruction fine-tuning (Flan-T5, Flan-PaLM) with T5X conventions."""
import pathlib

import setuptools

ROOT = pathlib.Path(__file__).parent


def _data_files(top, patterns):
  """Every file under `top` matching one of `patterns`, relative to `top`."""
  base = ROOT / top
  return sorted(
      str(p.relative_to(base))
      for pattern in patterns
      for p in base.rglob(pattern)
      if p.is_file()
  )


setuptools.setup(
    name="flan_jax",
    version="0.1.0",
    description="Instruction fine-tuning (FLAN) in JAX: T5X-style partitioned training on jax+flax+optax+orbax+seqio+gin.",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # `tasks/` and `gin/` live at the top of the repository but install under the
    # flan_jax namespace, so site-packages gets no generic `tasks` or `gin` module.
    packages=(
        setuptools.find_packages(include=["flan_jax", "flan_jax.*"])
        + ["flan_jax.tasks"]
        + ["flan_jax.tasks." + p for p in setuptools.find_packages("tasks")]
        + ["flan_jax.gin"]
        + ["flan_jax.launch"]
    ),
    package_dir={
        "flan_jax.tasks": "tasks",
        "flan_jax.gin": "gin",
        "flan_jax.launch": "launch",
    },
    package_data={
        "flan_jax.gin": _data_files("gin", ["*.gin"]),
        "flan_jax.tasks": _data_files("tasks", ["*.model", "*.json", "*.jsonl", "*.tsv", "*.csv", "*.txt"]),
    },
    install_requires=[
        "jax>=0.4.35",
        "flax>=0.10",
        "optax>=0.2.3",
        "orbax-checkpoint>=0.9",
        "gin-config>=0.5",
        "seqio>=0.0.19",
        "numpy",
        "tensorboardX",
        "safetensors>=0.4",
        "matplotlib",  # `flan-jax sweep report` plots (and tests/test_sweep.py)
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-xdist", "import-linter>=2.1"],  # import-linter: the layer contract (.importlinter)
        # Loose on purpose: a local CPU build of torch (e.g. 2.13.0) satisfies it.
        "hf": ["torch>=2.0", "transformers>=4.40", "safetensors>=0.4"],
        # Flan collection readers: Hugging Face datasets, parquet exports.
        "data": ["datasets", "pyarrow"],
        # XLA:TPU compiler (libtpu, ~210 MB) for `flan-jax plan --compile`; no TPU needed.
        "tpu": ["jax[tpu]==0.10.2"],  # the jax this project pins; brings the matching libtpu
        # `flan-jax data cache --engine=beam`: Apache Beam with its TFRecord sink. For Dataflow,
        # install apache-beam[gcp] too (it asks for another orjson than constraints.txt pins).
        "beam": ["apache-beam[tfrecord]>=2.77"],
    },
    entry_points={"console_scripts": ["flan-jax=flan_jax.cli:main"]},
)
