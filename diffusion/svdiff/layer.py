"""Spectral-shift layers: a frozen Linear/Conv2d with shifted singular values, and a norm with a weight shift."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studio.core import AdapterLayer

from ..layer_shape import LinearShape

NORM_TYPES = (nn.GroupNorm, nn.LayerNorm)


class SpectralShift(LinearShape, AdapterLayer):
    """`W' = U·diag(ReLU(σ + scale·δ))·Vᵀ` for a Linear or Conv2d weight (a conv kernel is flattened per output
    channel), with `δ` the only trainable tensor.

    It computes `W + U·diag(ReLU(σ + scale·δ) − σ)·Vᵀ`, which is the same matrix but equals `W` bit for bit at
    `δ = 0` (σ ≥ 0), so an untrained or zero-scaled layer is exactly the base layer, without the SVD's
    round-off. `U, σ, Vᵀ` are plain tensors, not buffers: they are as large as the weight, and the engine's
    checkpoints store every buffer; `_apply` still moves and casts them with the module.

    Args:
        base_layer: the frozen `nn.Linear` or `nn.Conv2d`.
        u: `[out, k]` left singular vectors.
        s: `[k]` singular values.
        vh: `[k, in·kh·kw]` right singular vectors.
        scale: multiplier of the shifts.
    """

    def __init__(
        self, base_layer: nn.Module, u: torch.Tensor, s: torch.Tensor, vh: torch.Tensor, scale: float
    ):
        super().__init__(base_layer)
        weight = base_layer.weight
        self.factors = {
            name: t.to(weight.device, weight.dtype) for name, t in (("u", u), ("s", s), ("vh", vh))
        }
        self.delta = nn.Parameter(torch.zeros(s.shape[0], device=weight.device, dtype=weight.dtype))
        self.scale = float(scale)
        self._saved_weight: torch.Tensor | None = None

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        self.factors = {name: fn(t) for name, t in self.factors.items()}
        return self

    def delta_weight(self) -> torch.Tensor:
        """`W' − W`, shaped like the base weight."""
        u, s, vh = self.factors["u"], self.factors["s"], self.factors["vh"]
        shift = torch.relu(s + self.scale * self.delta) - s
        return ((u * shift) @ vh).reshape(self.base_layer.weight.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The base layer's operation with the shifted weight."""
        if not self.active:
            return self.base_layer(x)
        base = self.base_layer
        weight = base.weight + self.delta_weight().to(base.weight.dtype)
        if isinstance(base, nn.Linear):
            return F.linear(x, weight, base.bias)
        return base._conv_forward(x, weight, base.bias)

    @torch.no_grad()
    def merge(self) -> None:
        """Write `W'` into the base weight (the original is kept for `unmerge`)."""
        self._saved_weight = self.base_layer.weight.detach().clone()
        self.base_layer.weight += self.delta_weight().to(self.base_layer.weight.dtype)

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the original weight exactly."""
        self.base_layer.weight.copy_(self._saved_weight)
        self._saved_weight = None


class NormShift(AdapterLayer):
    """A GroupNorm/LayerNorm whose affine weight is shifted, `γ' = γ + scale·δ` (SVDiff's 1-D parameters).

    Args:
        base_layer: the frozen norm layer (with an affine weight).
        scale: multiplier of the shift.
    """

    def __init__(self, base_layer: nn.Module, scale: float):
        super().__init__(base_layer)
        self.delta = nn.Parameter(torch.zeros_like(base_layer.weight))
        self.scale = float(scale)
        self._saved_weight: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The norm with the shifted weight."""
        base = self.base_layer
        if not self.active:
            return base(x)
        weight = base.weight + (self.scale * self.delta).to(base.weight.dtype)
        if isinstance(base, nn.GroupNorm):
            return F.group_norm(x, base.num_groups, weight, base.bias, base.eps)
        return F.layer_norm(x, base.normalized_shape, weight, base.bias, base.eps)

    @torch.no_grad()
    def merge(self) -> None:
        """Write `γ'` into the base weight (the original is kept for `unmerge`)."""
        self._saved_weight = self.base_layer.weight.detach().clone()
        self.base_layer.weight += self.scale * self.delta

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the original weight exactly."""
        self.base_layer.weight.copy_(self._saved_weight)
        self._saved_weight = None
