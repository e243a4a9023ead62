"""Checkpoint converters behind `flan-jax convert`.

`hf`: Hugging Face T5 / Flan-T5 (config.json + safetensors) to and from flan_jax
parameter checkpoints (`from-hf`, `to-hf`). Submodules import their heavy
dependencies lazily; nothing is registered on import.
"""
