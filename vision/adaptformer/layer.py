"""A block with AdaptFormer's parallel bottleneck beside its MLP, for any timm block with a residual MLP step."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from studio.core import AdapterLayer


class AdaptFormerBlock(AdapterLayer):
    """Runs a frozen block unchanged and adds `scale · up(dropout(relu(down(s))))` to its output.

    `s` is the residual stream entering the MLP step. In a token block (ViT, EVA, BEiT, Swin; pre- or post-norm)
    it is the input of whichever of `norm2`/`mlp` runs first, caught by a pre-hook, so the block's own
    forward (rope, relative position bias, windows, layer scale) runs as timm wrote it. A ConvNeXt block is one
    residual step around its MLP, so `s` is the block's NCHW input, taken per channel.

    Args:
        block: the frozen block.
        dim: channels of the stream.
        bottleneck: hidden width of the branch.
        scale: the fixed factor s.
        dropout: dropout after the ReLU.
        channels_first: the block maps NCHW feature maps (ConvNeXt) rather than token sequences.
    """

    def __init__(
        self,
        block: nn.Module,
        dim: int,
        bottleneck: int,
        scale: float,
        dropout: float,
        channels_first: bool = False,
    ) -> None:
        super().__init__(block)
        self.scale, self.dropout, self.channels_first = scale, dropout, channels_first
        self.down = nn.Linear(dim, bottleneck)
        self.up = nn.Linear(bottleneck, dim)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self._catching, self._stream = False, None
        if not channels_first:
            block.norm2.register_forward_pre_hook(self._catch_stream)
            block.mlp.register_forward_pre_hook(self._catch_stream)

    def _catch_stream(self, module: nn.Module, args: tuple) -> None:
        if self._catching and self._stream is None:
            self._stream = args[0]

    def _branch(self, stream: torch.Tensor) -> torch.Tensor:
        return self.scale * self.up(F.dropout(F.relu(self.down(stream)), self.dropout, self.training))

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """The block's output plus the branch of the stream entering its MLP step."""
        if not self.active:
            return self.base_layer(x, *args, **kwargs)
        if self.channels_first:
            return self.base_layer(x, *args, **kwargs) + self._branch(x.movedim(1, -1)).movedim(-1, 1)
        self._catching, self._stream = True, None
        try:
            out = self.base_layer(x, *args, **kwargs)
            stream = self._stream
        finally:
            self._catching, self._stream = False, None
        return out + self._branch(stream).reshape(
            out.shape
        )  # Swin's MLP step sees (B, H·W, C) of (B, H, W, C)
