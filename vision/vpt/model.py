"""Applying VPT to a timm vision transformer."""

from __future__ import annotations

from torch import nn

from studio.core import register_method, replace_module

from ..blocks import embed_dim, num_prefix_tokens, vit_blocks
from .config import VPTConfig
from .layer import PromptedBlock
from .swin import apply_swin_vpt, is_swin_attention

_INSTEAD = "use SSF, AdaptFormer or LoRA on it instead"


def _refusal(model: nn.Module, config: VPTConfig) -> str | None:
    """Why prompts cannot enter this model's attention unchanged, or None."""
    family = type(model).__name__
    if _is_swin(model):
        if config.deep:
            return None
        return (
            f"VPT-shallow on {family}: the authors' Swin variant carries the first prompts through every "
            "block and patch merging, which is not built; use deep prompts (VPTConfig(deep=True), the default)"
        )
    if any(hasattr(m, "shift_size") and hasattr(m, "window_size") for m in model.modules()):
        return (
            f"VPT on {family} would need prompts inside its windowed attention, which is built only for "
            f"timm's Swin (v1) WindowAttention; {_INSTEAD}"
        )
    if any(hasattr(m, "relative_position_bias_table") for m in model.modules()):
        return (
            f"VPT on {family}: its relative position bias covers only the class token and the patch grid, so "
            f"prompts would need bias entries of their own, which is not implemented; {_INSTEAD}"
        )
    return None


def _is_swin(model: nn.Module) -> bool:
    return any(is_swin_attention(m) for m in model.modules())


def _rope_leaves_prefix(model: nn.Module, blocks: list[tuple[str, nn.Module]]) -> bool:
    """Whether the blocks apply a rotary embedding to all but `attn.num_prefix_tokens` tokens (EVA)."""
    return getattr(model, "rope", None) is not None and all(
        hasattr(b.attn, "num_prefix_tokens") for _, b in blocks
    )


def apply_vpt(model: nn.Module, config: VPTConfig) -> None:
    """Wrap the blocks: the first inserts prompts, deeper ones replace them (deep) and the last strips them.

    With a rotary embedding (EVA) every block is wrapped, so that its attention counts the prompts among the
    class/register tokens that the rotary embedding leaves alone: prompts have no position in the patch grid.

    On Swin, every block's windowed attention gets prompts of its own instead (deep only; see `vision.vpt.swin`).

    Raises:
        ValueError: the model has no token blocks, or its attention cannot take prompts (BEiT, Swin V2,
            shallow prompts on Swin).
    """
    if (reason := _refusal(model, config)) is not None:
        raise ValueError(reason)
    if _is_swin(model):
        apply_swin_vpt(model, config.num_tokens, config.dropout)
        return
    blocks = vit_blocks(model, "VPT")
    rope = _rope_leaves_prefix(model, blocks)
    patch = getattr(getattr(model, "patch_embed", None), "patch_size", (16, 16))
    patch = patch[0] if isinstance(patch, (tuple, list)) else int(patch)
    last = len(blocks) - 1
    for i, (name, block) in enumerate(blocks):
        learn = i == 0 or config.deep
        if not (learn or i == last or rope):
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
            prompts_skip_rope=rope,
        )
        replace_module(model, name, wrapped)


register_method(VPTConfig, apply_vpt, domain="vision", task="finetune")
