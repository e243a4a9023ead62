"""Model families. `build_model(config)` picks the module and input format from the config type."""
from __future__ import annotations

import flax.linen as nn


def build_model(config) -> tuple[nn.Module, str]:
  """(flax module, seqio feature converter name) for a model config."""
  from flan_jax.models import t5
  if isinstance(config, t5.T5Config):
    return t5.Transformer(config), "encdec"
  from flan_jax.models import palm
  if isinstance(config, palm.PaLMConfig):
    return palm.Decoder(config), "prefix_lm"
  raise ValueError(f"unknown model config {type(config).__name__}; bind train.model_config to "
                   "@T5Config() or @PaLMConfig() (see gin/models/)")
