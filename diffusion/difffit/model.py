"""Injecting DiffFit into a UNet."""

from __future__ import annotations

from torch import nn

from studio.core import find_targets, replace_module

from .config import DiffFitConfig
from .layer import NormAffineShift, ScaledBias

NORMS = (nn.GroupNorm, nn.LayerNorm)


def apply_difffit(model: nn.Module, config: DiffFitConfig) -> None:
    """Wrap the scaled layers, every biased Linear/Conv2d (with `train_biases`) and every affine norm (with
    `train_norms`) of `model` (for `studio.core.inject`).

    Raises:
        ValueError: no Linear layer matches `config.scale_targets` (the message lists some to choose from).
    """
    scaled = {name for name, _ in find_targets(model, config.scale_targets, predicate=_is_linear)}
    for name, module in list(model.named_modules()):
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            shift = config.train_biases and module.bias is not None
            if shift or name in scaled:
                replace_module(model, name, ScaledBias(module, shift_bias=shift, scale=name in scaled))
        elif config.train_norms and isinstance(module, NORMS) and module.weight is not None:
            replace_module(model, name, NormAffineShift(module))


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear)
