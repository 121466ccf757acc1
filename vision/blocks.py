"""Finding the transformer blocks of a timm vision transformer."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

BLOCK_PARTS = ("norm1", "attn", "norm2", "mlp")


def is_vit_block(module: nn.Module) -> bool:
    """Whether `module` is a transformer block on a token sequence with timm's layout (ViT, DeiT, EVA, BEiT)."""
    return all(hasattr(module, part) for part in BLOCK_PARTS)


def vit_blocks(model: nn.Module, method: str) -> list[tuple[str, nn.Module]]:
    """The `(name, block)` pairs of `model.blocks`, with a clear error for models that have none.

    Args:
        model: a timm vision transformer.
        method: the method asking, named in the error.
    """
    blocks = getattr(model, "blocks", None)
    if (
        not isinstance(blocks, (nn.Sequential, nn.ModuleList))
        or not all(is_vit_block(b) for b in blocks)
        or len(blocks) == 0
    ):
        raise ValueError(
            f"{method} needs a token sequence: a timm vision transformer with `blocks` of transformer blocks "
            f"(norm1/attn/norm2/mlp); {type(model).__name__} has none (its blocks work on feature maps)"
        )
    return [(f"blocks.{i}", block) for i, block in enumerate(blocks)]


def num_prefix_tokens(model: nn.Module) -> int:
    """How many class/register tokens precede the patch tokens (timm's `num_prefix_tokens`)."""
    return int(getattr(model, "num_prefix_tokens", 1))


def embed_dim(model: nn.Module) -> int:
    """Width of the token embeddings."""
    dim = getattr(model, "embed_dim", None) or getattr(model, "num_features", None)
    if dim is None:
        raise ValueError(f"cannot tell the embedding width of {type(model).__name__}")
    return int(dim)


def _stream_width(block: nn.Module) -> tuple[int, bool] | None:
    """`(channels, channels_first)` of the stream entering a block's MLP step, or None for other modules."""
    if not isinstance(getattr(block, "mlp", None), nn.Module):
        return None
    if isinstance(getattr(block, "conv_dw", None), nn.Conv2d) and hasattr(block, "norm"):
        return block.conv_dw.in_channels, True  # ConvNeXt: one residual step, depthwise conv + norm + MLP
    shape = getattr(getattr(block, "norm2", None), "normalized_shape", None)
    if shape is None or len(shape) != 1:
        return None
    return int(shape[0]), False


def mlp_blocks(
    model: nn.Module, method: str, skip: Sequence[str] = ()
) -> list[tuple[str, nn.Module, int, bool]]:
    """The blocks with a residual MLP step (ViT, EVA, BEiT, Swin, ConvNeXt), outermost only.

    Args:
        model: a timm model.
        method: the method asking, named in the error.
        skip: module names left alone with their children (e.g. the head).

    Returns:
        `(name, block, channels, channels_first)` per block, in model order.

    Raises:
        ValueError: the model has no such block.
    """
    found: list[tuple[str, nn.Module, int, bool]] = []
    for name, module in model.named_modules():
        if not name or any(name == s or name.startswith(f"{s}.") for s in [*skip, *(f[0] for f in found)]):
            continue
        if (width := _stream_width(module)) is not None:
            found.append((name, module, *width))
    if not found:
        raise ValueError(
            f"{method} needs a vision transformer, Swin or ConvNeXt: blocks with a residual MLP step (`mlp` beside "
            f"`norm2`, or ConvNeXt's `conv_dw`/`norm`/`mlp`); {type(model).__name__} has none"
        )
    return found
