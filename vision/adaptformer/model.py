"""Applying AdaptFormer to a timm vision transformer."""

from __future__ import annotations

from torch import nn

from studio.core import register_method, replace_module

from ..blocks import embed_dim, vit_blocks
from .config import AdaptFormerConfig
from .layer import AdaptFormerBlock


def apply_adaptformer(model: nn.Module, config: AdaptFormerConfig) -> None:
    """Wrap every block with a parallel bottleneck branch."""
    dim = embed_dim(model)
    for name, block in vit_blocks(model, "AdaptFormer"):
        replace_module(
            model, name, AdaptFormerBlock(block, dim, config.bottleneck, config.scale, config.dropout)
        )


register_method(AdaptFormerConfig, apply_adaptformer)
