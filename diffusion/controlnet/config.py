"""ControlNet's hyperparameters."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import hfield

from ..control.config import ControlConfig


@dataclass
class ControlNetConfig(ControlConfig):
    """ControlNet hyperparameters.

    Args:
        lr: learning rate; the authors train SD 1.5 ControlNets with 1e-5, batch 4.
        scale: `controlnet_conditioning_scale` used by `generate` unless given there.
        conditioning_embedding_out_channels: channels of the small conv net that brings the condition image to
            latent resolution; None derives it from the VAE (one stride-2 conv per factor of 2).
        conditioning_channels: channels of the condition image (3: RGB).
    """

    method = "controlnet"
    merge_unsupported = "a ControlNet is a separate network; it is never folded into the UNet"

    lr: float = hfield(1e-5, "Learning rate (AdamW); the authors use 1e-5 with batch 4 for SD 1.5.")
    scale: float = hfield(1.0, "Default controlnet_conditioning_scale at sampling (0 switches it off).")
    conditioning_embedding_out_channels: list[int] | None = hfield(
        None,
        "Channels of the condition encoder (one stride-2 conv between entries); None: (16, 32, 96, 256) "
        "cut to the VAE's downsampling factor.",
    )
    conditioning_channels: int = hfield(3, "Channels of the condition image (3 for RGB).")

    def validate(self) -> None:
        """Raise `ValueError` for empty or non-positive channel lists."""
        super().validate()
        channels = self.conditioning_embedding_out_channels
        if channels is not None and (not channels or any(int(c) < 1 for c in channels)):
            raise ValueError(f"conditioning_embedding_out_channels must be positive ints, got {channels}")
        if self.conditioning_channels < 1:
            raise ValueError(f"conditioning_channels must be >= 1, got {self.conditioning_channels}")
