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

    def _branch(self, stream: torch.Tensor) -> torch.Tensor:
        return self.scale * self.up(F.dropout(F.relu(self.down(stream)), self.dropout, self.training))

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """The block's output plus the branch of the stream entering its MLP step."""
        if not self.active:
            return self.base_layer(x, *args, **kwargs)
        if self.channels_first:
            return self.base_layer(x, *args, **kwargs) + self._branch(x.movedim(1, -1)).movedim(-1, 1)
        # Hooks only while this forward runs, so the frozen block carries nothing once the adapter is removed.
        caught: list[torch.Tensor] = []

        def catch(module: nn.Module, inputs: tuple) -> None:
            if not caught:
                caught.append(inputs[0])

        block = self.base_layer
        handles = [block.norm2.register_forward_pre_hook(catch), block.mlp.register_forward_pre_hook(catch)]
        try:
            out = block(x, *args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()
        # Swin's MLP step sees (B, H·W, C) of its (B, H, W, C) output.
        return out + self._branch(caught[0]).reshape(out.shape)
