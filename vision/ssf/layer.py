"""The scale-shift layer that follows a Linear, LayerNorm or Conv2d, and its merge into that layer."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from studio.core import AdapterLayer

SUPPORTED = (nn.Linear, nn.LayerNorm, nn.Conv2d)


def _channels(layer: nn.Module) -> int:
    if isinstance(layer, nn.Linear):
        return layer.out_features
    if isinstance(layer, nn.Conv2d):
        return layer.out_channels
    if isinstance(layer, nn.LayerNorm):
        if len(layer.normalized_shape) != 1 or not layer.elementwise_affine:
            raise ValueError("SSF needs a LayerNorm over the last dimension with an affine weight")
        return layer.normalized_shape[0]
    raise TypeError(f"SSF supports {[t.__name__ for t in SUPPORTED]}, not {type(layer).__name__}")


class _ScaleShiftFunction(torch.autograd.Function):
    """`y·γ + β` that keeps only its output for backward (the input is implied by `y = (out − β) / γ`).

    Where the next op saves that output anyway (GELU after fc1, the attention after qkv) SSF then adds no
    activation memory; a plain `y * γ + β` keeps `y` as well, which made SSF need more memory than full
    fine-tuning (ViT-S/16, batch 8: 673 MB saved for backward, against 477 MB with this function).
    """

    @staticmethod
    def forward(ctx, y: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        out = torch.addcmul(shift, y, scale)
        ctx.save_for_backward(out, scale, shift)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        out, scale, shift = ctx.saved_tensors
        grad_shift = grad.sum_to_size(shift.shape)
        # Σ grad·y with y = (out − β)/γ, without materialising y: (Σ grad·out − β·Σ grad) / γ per channel.
        grad_scale = ((grad * out).sum_to_size(scale.shape) - shift * grad_shift) / scale
        return grad * scale, grad_scale, grad_shift


class ScaleShift(AdapterLayer):
    """`y = γ ⊙ base(x) + β`, per output channel (last dim for Linear/LayerNorm, dim 1 for Conv2d).

    Args:
        base_layer: the Linear, LayerNorm or Conv2d it follows.
        init_std: std of the random init around γ=1, β=0 (0 = exact identity).
    """

    def __init__(self, base_layer: nn.Module, init_std: float = 0.0) -> None:
        super().__init__(base_layer)
        channels = _channels(base_layer)
        self.scale = nn.Parameter(1.0 + init_std * torch.randn(channels))
        self.shift = nn.Parameter(init_std * torch.randn(channels))
        self._bias_added = False

    def _view(self, t: torch.Tensor, ndim: int) -> torch.Tensor:
        if isinstance(self.base_layer, nn.Conv2d):
            return t.view(-1, *([1] * (ndim - 2)))
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The base layer's output, scaled and shifted."""
        base = self.base_layer
        if self.active and isinstance(base, nn.LayerNorm):
            # Folded into the norm's affine: the norm keeps what its backward needs, SSF adds no activation.
            # The norm's own forward runs, so a channels-first norm (timm's LayerNorm2d) stays per channel.
            affine = {"weight": base.weight * self.scale, "bias": base.bias * self.scale + self.shift}
            return functional_call(base, affine, (x,))
        y = base(x)
        if not self.active:
            return y
        scale, shift = self._view(self.scale, y.ndim).to(y.dtype), self._view(self.shift, y.ndim).to(y.dtype)
        if torch.is_grad_enabled() and scale.detach().abs().min() > 1e-3:
            return _ScaleShiftFunction.apply(y, scale, shift)
        return torch.addcmul(shift, y, scale)  # near-zero scales cannot be divided by: keep y for backward

    def merge(self) -> None:
        """`W' = diag(γ)·W`, `b' = γ ⊙ b + β` (a bias is added if the layer had none)."""
        base = self.base_layer
        gamma = self.scale.detach().to(base.weight.dtype)
        if base.bias is None:
            base.bias = nn.Parameter(torch.zeros_like(gamma), requires_grad=False)
            self._bias_added = True
        base.weight.mul_(gamma.view(-1, *([1] * (base.weight.ndim - 1))))
        base.bias.mul_(gamma).add_(self.shift.detach().to(base.bias.dtype))

    def unmerge(self) -> None:
        """Invert `merge`; refuses when a scale is too close to zero to divide by."""
        base = self.base_layer
        gamma = self.scale.detach().to(base.weight.dtype)
        if gamma.abs().min() < 1e-6:
            raise ValueError("cannot unmerge SSF: a scale is ~0, so the base weight is lost")
        base.bias.sub_(self.shift.detach().to(base.bias.dtype)).div_(gamma)
        base.weight.div_(gamma.view(-1, *([1] * (base.weight.ndim - 1))))
        if self._bias_added:
            base.bias = None
            self._bias_added = False
