"""A projection trained in full: a trainable copy of a frozen linear layer's weight."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from studio.core import AdapterLayer


class TrainedCopy(AdapterLayer):
    """`y = W' x + b` with `W'` a trainable copy of the base weight `W` (so it starts equal to the base).

    Args:
        base_layer: the frozen `nn.Linear`.
    """

    def __init__(self, base_layer: nn.Linear) -> None:
        super().__init__(base_layer)
        self.weight_copy = nn.Parameter(base_layer.weight.detach().clone())
        self._saved: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The projection with the trained weight while active."""
        if not self.active:
            return self.base_layer(x)
        return F.linear(x, self.weight_copy.to(x.dtype), self.base_layer.bias)

    @torch.no_grad()
    def merge(self) -> None:
        """Write the trained weight into the base layer (the original is kept for `unmerge`)."""
        self._saved = self.base_layer.weight.detach().clone()
        self.base_layer.weight.copy_(self.weight_copy)

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the original weight exactly."""
        self.base_layer.weight.copy_(self._saved)
        self._saved = None
