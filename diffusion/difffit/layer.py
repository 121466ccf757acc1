"""DiffFit's layers: a bias shift and an output scale on a Linear/Conv2d, and shifts of a norm's affine."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from studio.core import AdapterLayer

from ..layer_shape import LinearShape


class ScaledBias(LinearShape, AdapterLayer):
    """`y = γ · (W x + b + δ)`: a trainable bias shift δ (init 0) and, on scaled layers, a scale γ (init 1).

    Args:
        base_layer: the frozen `nn.Linear` or `nn.Conv2d`.
        shift_bias: train δ (only for a layer with a bias).
        scale: train γ.
    """

    def __init__(self, base_layer: nn.Linear | nn.Conv2d, shift_bias: bool, scale: bool) -> None:
        super().__init__(base_layer)
        channels = base_layer.weight.shape[0]
        has_bias = base_layer.bias is not None
        self.bias_shift = nn.Parameter(torch.zeros(channels)) if shift_bias and has_bias else None
        self.gamma = nn.Parameter(torch.ones(())) if scale else None
        self._saved: tuple[torch.Tensor, torch.Tensor | None] | None = None

    def _per_channel(self, value: torch.Tensor) -> torch.Tensor:
        # Channels are dim 1 of a conv's NCHW output and the last dim of a linear's.
        return value.view(-1, 1, 1) if isinstance(self.base_layer, nn.Conv2d) else value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The base output with the shift and scale applied while active."""
        y = self.base_layer(x)
        if not self.active:
            return y
        if self.bias_shift is not None:
            y = y + self._per_channel(self.bias_shift).to(y.dtype)
        return y * self.gamma.to(y.dtype) if self.gamma is not None else y

    @torch.no_grad()
    def merge(self) -> None:
        """`W ← γ W`, `b ← γ (b + δ)` (the originals are kept for `unmerge`)."""
        base = self.base_layer
        self._saved = (
            base.weight.detach().clone(),
            None if base.bias is None else base.bias.detach().clone(),
        )
        if self.bias_shift is not None:
            base.bias += self.bias_shift.to(base.bias.dtype)
        if self.gamma is not None:
            base.weight *= self.gamma.to(base.weight.dtype)
            if base.bias is not None:
                base.bias *= self.gamma.to(base.bias.dtype)

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the original weight and bias exactly."""
        weight, bias = self._saved
        self.base_layer.weight.copy_(weight)
        if bias is not None:
            self.base_layer.bias.copy_(bias)
        self._saved = None


class NormAffineShift(AdapterLayer):
    """A GroupNorm/LayerNorm with trainable shifts of its affine weight and bias (init 0).

    Args:
        base_layer: the frozen norm layer (with affine parameters).
    """

    def __init__(self, base_layer: nn.GroupNorm | nn.LayerNorm) -> None:
        super().__init__(base_layer)
        self.weight_shift = nn.Parameter(torch.zeros_like(base_layer.weight))
        self.bias_shift = nn.Parameter(torch.zeros_like(base_layer.bias))
        self._saved: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The norm with shifted affine parameters while active."""
        base = self.base_layer
        if not self.active:
            return base(x)
        weight, bias = base.weight + self.weight_shift, base.bias + self.bias_shift
        if isinstance(base, nn.GroupNorm):
            return F.group_norm(x, base.num_groups, weight, bias, base.eps)
        return F.layer_norm(x, base.normalized_shape, weight, bias, base.eps)

    @torch.no_grad()
    def merge(self) -> None:
        """Add the shifts to the base parameters (the originals are kept for `unmerge`)."""
        base = self.base_layer
        self._saved = (base.weight.detach().clone(), base.bias.detach().clone())
        base.weight += self.weight_shift
        base.bias += self.bias_shift

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the original parameters exactly."""
        self.base_layer.weight.copy_(self._saved[0])
        self.base_layer.bias.copy_(self._saved[1])
        self._saved = None
