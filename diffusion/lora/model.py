"""Injecting LoRA into a pipeline's UNet (and text encoder)."""

from __future__ import annotations

import dataclasses

from torch import nn

from studio.core import LoRALinear, find_targets, replace_module

from .config import DiffusionLoRAConfig


def apply_diffusion_lora(model: nn.Module, config: DiffusionLoRAConfig) -> None:
    """Wrap every targeted `nn.Linear` of `model` in a `LoRALinear` (for `studio.core.inject`).

    Raises:
        ValueError: no Linear layer matches `config.target_modules` (the message lists some to choose from).
    """
    targets = find_targets(model, config.target_modules, predicate=lambda m: isinstance(m, nn.Linear))
    for name, layer in targets:
        replace_module(model, name, LoRALinear(layer, config.r, config.alpha, config.dropout))


def text_encoder_config(config: DiffusionLoRAConfig) -> DiffusionLoRAConfig:
    """The config injected into the text encoder: the same rank and scale on `text_target_modules`."""
    return dataclasses.replace(config, target_modules=config.text_target_modules)
