"""Applying VPT to a timm vision transformer."""

from __future__ import annotations

from torch import nn

from studio.core import register_method, replace_module

from ..blocks import embed_dim, num_prefix_tokens, vit_blocks
from .config import VPTConfig
from .layer import PromptedBlock


def apply_vpt(model: nn.Module, config: VPTConfig) -> None:
    """Wrap the blocks: the first inserts prompts, deeper ones replace them (deep) and the last strips them."""
    blocks = vit_blocks(model, "VPT")
    patch = getattr(getattr(model, "patch_embed", None), "patch_size", (16, 16))
    patch = patch[0] if isinstance(patch, (tuple, list)) else int(patch)
    last = len(blocks) - 1
    for i, (name, block) in enumerate(blocks):
        learn = i == 0 or config.deep
        if not (learn or i == last):
            continue
        wrapped = PromptedBlock(
            block,
            config.num_tokens,
            embed_dim(model),
            num_prefix_tokens(model),
            learn=learn,
            insert=i == 0,
            strip=i == last,
            patch_size=patch,
            dropout=config.dropout,
        )
        replace_module(model, name, wrapped)


register_method(VPTConfig, apply_vpt)
