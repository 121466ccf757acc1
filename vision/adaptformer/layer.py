"""A ViT block with AdaptFormer's parallel bottleneck beside the MLP."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from studio.core import AdapterLayer


class AdaptFormerBlock(AdapterLayer):
    """Runs a timm ViT block, adding `scale · up(dropout(relu(down(x))))` of the post-attention stream.

    Args:
        block: the frozen block (timm layout: norm1, attn, ls1, drop_path1, norm2, mlp, ls2, drop_path2).
        dim: token width.
        bottleneck: hidden width of the branch.
        scale: the fixed factor s.
        dropout: dropout after the ReLU.
    """

    def __init__(self, block: nn.Module, dim: int, bottleneck: int, scale: float, dropout: float) -> None:
        super().__init__(block)
        self.scale, self.dropout = scale, dropout
        self.down = nn.Linear(dim, bottleneck)
        self.up = nn.Linear(bottleneck, dim)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """The block's two residual steps, with the branch added beside the MLP."""
        if not self.active:
            return self.base_layer(x, *args, **kwargs)
        b = self.base_layer
        x = x + b.drop_path1(b.ls1(b.attn(b.norm1(x), *args, **kwargs)))
        branch = self.up(F.dropout(F.relu(self.down(x)), self.dropout, self.training))
        return x + b.drop_path2(b.ls2(b.mlp(b.norm2(x)))) + self.scale * branch
