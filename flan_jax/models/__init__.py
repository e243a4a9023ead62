"""Model families and the registry that finds them (see `family.py` for the interface).

Importing this package registers the two shipped families, and with them their gin
configurables `T5Config` and `PaLMConfig` (so an entry point that imports
`flan_jax.models` can parse any model gin file before gin locks its config).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import gin

from flan_jax.models.family import Family, ModelConfig, has_stacked_layers, stack_layers, unstack_layers  # noqa: F401

_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
  """Makes a family known by its name and its config class; returns it. Re-registering the
  same name with the same config class replaces the entry (module reloads)."""
  if not family.name or not issubclass(family.config_class, ModelConfig):
    raise ValueError(f"{family!r}: a family needs a name and a config class derived from ModelConfig")
  old = _FAMILIES.get(family.name)
  if old is not None and old.config_class.__name__ != family.config_class.__name__:
    raise ValueError(f"model family {family.name!r} is already registered for {old.config_class.__name__}")
  _FAMILIES[family.name] = family
  return family


def families() -> dict[str, Family]:
  return dict(_FAMILIES)


def get_family(name: str) -> Family:
  if name not in _FAMILIES:
    raise ValueError(f"unknown model family {name!r}; known: {sorted(_FAMILIES)}")
  return _FAMILIES[name]


def family_for(config_or_module: Any) -> Family:
  """The family of a model config, or of a module built from one (its `.config`)."""
  config = getattr(config_or_module, "config", config_or_module) if isinstance(config_or_module, nn.Module) \
      else config_or_module
  # Most derived registered class first, so a family whose config subclasses another's wins.
  matches = [f for f in _FAMILIES.values() if isinstance(config, f.config_class)]
  if not matches:
    names = ", ".join(f"@{f.config_class.__name__}()" for f in _FAMILIES.values())
    raise ValueError(f"unknown model config {type(config).__name__}; bind train.model_config to one of "
                     f"{names} (see gin/models/)")
  return max(matches, key=lambda f: len(type.mro(f.config_class)))


def config_from_gin() -> ModelConfig:
  """The model a parsed gin config sets: the MODEL_CONFIG macro (what gin/models/ files set),
  else the one model config class the files bind."""
  try:
    ref = gin.query_parameter("%MODEL_CONFIG")
  except ValueError:
    ref = None
  if ref is not None:
    return ref.scoped_configurable_fn()
  bound = [f.config_class for f in _FAMILIES.values() if gin.get_bindings(f.config_class.__name__)]
  if len(bound) != 1:
    raise ValueError("the gin files set no model: include a gin/models/... file (it sets MODEL_CONFIG)")
  return bound[0]()


def build_model(config: ModelConfig) -> tuple[nn.Module, str]:
  """(flax module, seqio feature converter name) for a model config."""
  family = family_for(config)
  return family.build(config), family.feature_converter


from flan_jax.models import palm, t5  # noqa: E402  (the shipped families)

register_family(t5.EncoderDecoder())
register_family(palm.DecoderOnly())
