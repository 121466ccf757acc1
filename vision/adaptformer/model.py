"""Applying AdaptFormer to a timm model's blocks."""

from __future__ import annotations

from torch import nn

from studio.core import register_method, replace_module, resolve_modules_to_save

from ..blocks import mlp_blocks
from .config import AdaptFormerConfig
from .layer import AdaptFormerBlock


def apply_adaptformer(model: nn.Module, config: AdaptFormerConfig) -> None:
    """Wrap every block that has a residual MLP step with a parallel bottleneck branch."""
    skip = resolve_modules_to_save(model, config)
    for name, block, dim, channels_first in mlp_blocks(model, "AdaptFormer", skip):
        wrapped = AdaptFormerBlock(
            block, dim, config.bottleneck, config.scale, config.dropout, channels_first
        )
        replace_module(model, name, wrapped)


register_method(AdaptFormerConfig, apply_adaptformer, domain="vision", task="finetune")
