"""Checkpoints and their conversion (`flan-jax convert`).

`checkpoints`: flan_jax's own (Orbax) run checkpoints and initial-checkpoint loading;
`hf`: Hugging Face T5 / Flan-T5 (config.json + safetensors) to and from flan_jax;
`t5x`: T5X checkpoints read as flan_jax parameters and Adafactor statistics;
`staging`: converted output written into a staged directory and renamed into place.
"""
