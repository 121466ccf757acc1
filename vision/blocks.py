"""Finding the transformer blocks of a timm vision transformer."""

from __future__ import annotations

from torch import nn

BLOCK_PARTS = ("norm1", "attn", "ls1", "drop_path1", "norm2", "mlp", "ls2", "drop_path2")


def is_vit_block(module: nn.Module) -> bool:
    """Whether `module` is a pre-norm ViT block with timm's layout (ViT, DeiT, BEiT-style `Block`)."""
    return all(hasattr(module, part) for part in BLOCK_PARTS)


def vit_blocks(model: nn.Module, method: str) -> list[tuple[str, nn.Module]]:
    """The `(name, block)` pairs of `model.blocks`, with a clear error for models that have none.

    Args:
        model: a timm vision transformer.
        method: the method asking, named in the error.
    """
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.Sequential) or not all(is_vit_block(b) for b in blocks) or len(blocks) == 0:
        raise ValueError(
            f"{method} needs a timm vision transformer with `blocks` of pre-norm ViT blocks "
            f"(norm1/attn/norm2/mlp); {type(model).__name__} has none"
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
