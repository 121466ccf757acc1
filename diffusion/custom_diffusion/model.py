"""Injecting Custom Diffusion into a UNet: trained copies of the cross-attention projections."""

from __future__ import annotations

from torch import nn

from studio.core import find_targets, replace_module

from .config import CustomDiffusionConfig
from .layer import TrainedCopy

KV = ("attn2.to_k", "attn2.to_v")
Q_OUT = ("attn2.to_q", "attn2.to_out.0")


def projections(config: CustomDiffusionConfig) -> tuple[str, ...]:
    """The cross-attention projections the config trains (dotted suffixes)."""
    return KV + Q_OUT if config.train_q_out else KV


def apply_custom_diffusion(model: nn.Module, config: CustomDiffusionConfig) -> None:
    """Replace each cross-attention's trained projections with `TrainedCopy` layers (for `inject`).

    Raises:
        ValueError: the model has no cross-attention (`attn2`) projections.
    """
    for name, layer in find_targets(
        model, list(projections(config)), predicate=lambda m: isinstance(m, nn.Linear)
    ):
        replace_module(model, name, TrainedCopy(layer))
