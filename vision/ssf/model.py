"""Applying SSF to a model."""

from __future__ import annotations

from torch import nn

from studio.core import find_targets, register_method, replace_module, resolve_modules_to_save

from .config import SSFConfig
from .layer import SUPPORTED, ScaleShift


def apply_ssf(model: nn.Module, config: SSFConfig) -> None:
    """Follow every targeted Linear/LayerNorm/Conv2d outside the head with a scale-shift."""
    targets = find_targets(
        model,
        config.target_modules,
        config.exclude_modules,
        predicate=lambda m: isinstance(m, SUPPORTED),
        skip=resolve_modules_to_save(model, config),
    )
    for name, module in targets:
        replace_module(model, name, ScaleShift(module, config.init_std))


register_method(SSFConfig, apply_ssf)
