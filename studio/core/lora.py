"""LoRA: a linear layer with low-rank updates on some or all of its output slices (every domain uses it)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .layer import AdapterLayer


class LoRALinear(AdapterLayer):
    """`y = base(x) + (alpha / r) · B_j A_j x` on each adapted output slice j.

    Args:
        base_layer: the frozen `nn.Linear`.
        r: rank.
        alpha: scale numerator.
        dropout: dropout on the branch input.
        num_slices: equal output slices of the layer (3 for a fused qkv, else 1).
        slices: which slices get an update.
    """

    def __init__(
        self, base_layer: nn.Linear, r: int, alpha: float, dropout: float, num_slices: int = 1, slices=(0,)
    ) -> None:
        super().__init__(base_layer)
        out_slice = base_layer.out_features // num_slices
        self.num_slices, self.slices = num_slices, tuple(slices)
        self.scaling, self.dropout = alpha / r, dropout
        self.lora_A = nn.Parameter(torch.empty(len(self.slices), r, base_layer.in_features))
        self.lora_B = nn.Parameter(torch.zeros(len(self.slices), out_slice, r))
        for a in self.lora_A:
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """`A` as (k·r, in) and a block-structured `B` as (out, k·r): slice j's rows use only update j.

        One pair of small matmuls then updates every adapted slice, with no scatter into the output.
        """
        k, out_slice, r = self.lora_B.shape
        b = self.lora_B.new_zeros(self.num_slices, out_slice, k, r)
        b[list(self.slices), :, torch.arange(k), :] = self.lora_B * self.scaling
        return self.lora_A.reshape(k * r, -1), b.reshape(self.num_slices * out_slice, k * r)

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight `W + (alpha / r) · B A` (just `W` once merged or disabled).

        Attention code that reads `qkv.weight` directly (EVA, BEiT: `F.linear(x, qkv.weight, qkv_bias)`)
        then sees the adapted layer without calling `forward`.
        """
        base = self.base_layer.weight
        if not self.active:
            return base
        a, b = self._factors()
        return base + (b @ a).to(base.dtype)

    @property
    def bias(self) -> torch.Tensor | None:
        """The base layer's bias (LoRA leaves it as it is)."""
        return self.base_layer.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The base output plus the low-rank updates on the adapted slices."""
        y = self.base_layer(x)
        if not self.active:
            return y
        a, b = self._factors()
        h = F.dropout(x, self.dropout, self.training).to(a.dtype)
        return y + F.linear(F.linear(h, a), b).to(y.dtype)

    def merge(self) -> None:
        """`W += (alpha / r) · B A` on the adapted slices."""
        a, b = self._factors()
        self.base_layer.weight.add_((b @ a).to(self.base_layer.weight.dtype))

    def unmerge(self) -> None:
        """`W -= (alpha / r) · B A`."""
        a, b = self._factors()
        self.base_layer.weight.sub_((b @ a).to(self.base_layer.weight.dtype))
