"""A linear layer with low-rank updates on some or all of its output slices."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from studio.core import AdapterLayer


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

    def _delta_weight(self) -> torch.Tensor:
        delta = torch.zeros_like(self.base_layer.weight).view(
            self.num_slices, -1, self.base_layer.in_features
        )
        delta[list(self.slices)] = (self.lora_B @ self.lora_A).to(delta.dtype) * self.scaling
        return delta.view_as(self.base_layer.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The base output plus the low-rank updates on the adapted slices."""
        y = self.base_layer(x)
        if not self.active:
            return y
        h = F.dropout(x, self.dropout, self.training).to(self.lora_A.dtype)
        update = torch.einsum("...i,kri->...kr", h, self.lora_A)
        update = torch.einsum("...kr,kor->...ko", update, self.lora_B) * self.scaling
        if len(self.slices) == self.num_slices:
            return y + update.flatten(-2).to(y.dtype)
        full = y.new_zeros(*y.shape[:-1], self.num_slices, y.shape[-1] // self.num_slices)
        full[..., list(self.slices), :] = update.to(y.dtype)
        return y + full.flatten(-2)

    def merge(self) -> None:
        """`W += (alpha / r) · B A` on the adapted slices."""
        self.base_layer.weight.add_(self._delta_weight())

    def unmerge(self) -> None:
        """`W -= (alpha / r) · B A`."""
        self.base_layer.weight.sub_(self._delta_weight())
