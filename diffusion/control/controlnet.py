"""ControlNet: a trainable copy of the UNet encoder joined to the frozen UNet by zero-initialised convs.

Built with diffusers' own `ControlNetModel.from_unet`, so the zero convolutions make the controlled UNet equal
the base UNet at step 0, and the artifact is a stock `save_pretrained` folder.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from diffusers import ControlNetModel, UNet2DConditionModel

from studio.core import hfield, register_method

from ..artifacts import ArtifactSpec, config_class_name
from .config import ControlConfig

# diffusers' default conditioning embedding, made for a VAE that downsamples by 8 (three stride-2 convs).
DEFAULT_EMBEDDING_CHANNELS = (16, 32, 96, 256)


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


def embedding_channels(config: ControlNetConfig, vae_scale_factor: int) -> tuple[int, ...]:
    """The condition encoder's channels: one stride-2 conv per factor of 2 of the VAE's downsampling.

    Args:
        config: the ControlNet config.
        vae_scale_factor: pixels per latent pixel (8 for SD 1.5, 4 for `studio/shapes-sd`).

    Returns:
        The channel tuple for `ControlNetModel.from_unet`.

    Raises:
        ValueError: when the configured channels do not downsample by exactly `vae_scale_factor`.
    """
    downsamples = int(round(math.log2(vae_scale_factor)))
    if config.conditioning_embedding_out_channels is None:
        base = list(DEFAULT_EMBEDDING_CHANNELS)
        base += [base[-1]] * max(0, downsamples + 1 - len(base))
        return tuple(base[: downsamples + 1])
    channels = tuple(int(c) for c in config.conditioning_embedding_out_channels)
    if len(channels) != downsamples + 1:
        raise ValueError(
            f"conditioning_embedding_out_channels {list(channels)} downsample by {2 ** (len(channels) - 1)}, "
            f"but the VAE downsamples by {vae_scale_factor}: give {downsamples + 1} entries"
        )
    return channels


def build_controlnet(
    unet: UNet2DConditionModel, config: ControlNetConfig, vae_scale_factor: int
) -> ControlNetModel:
    """A ControlNet initialised from `unet`'s encoder, with zero-initialised output convs.

    Args:
        unet: the frozen base UNet (its encoder weights are copied).
        config: the ControlNet config.
        vae_scale_factor: the pipeline's `vae_scale_factor`.

    Returns:
        The ControlNet (float32, on the UNet's device, trainable).
    """
    controlnet = ControlNetModel.from_unet(
        unet,
        conditioning_embedding_out_channels=embedding_channels(config, vae_scale_factor),
        conditioning_channels=config.conditioning_channels,
    )
    return controlnet.to(device=unet.device, dtype=torch.float32).requires_grad_(True)


def controlnet_residuals(
    controlnet: ControlNetModel,
    noisy: torch.Tensor,
    timesteps: torch.Tensor,
    text: torch.Tensor,
    condition: torch.Tensor,
    scale: float = 1.0,
) -> dict[str, object]:
    """The UNet keyword arguments that inject the ControlNet's residuals.

    Args:
        controlnet: the ControlNet.
        noisy: noisy latents `[B, C, h, w]`.
        timesteps: `[B]` timesteps.
        text: text embeddings `[B, L, D]`.
        condition: condition images `[B, 3, H, W]` in [0, 1] (what the stock pipeline feeds).
        scale: conditioning scale.

    Returns:
        `down_block_additional_residuals` and `mid_block_additional_residual` for `UNet2DConditionModel`.
    """
    down, mid = controlnet(
        noisy,
        timesteps,
        encoder_hidden_states=text,
        controlnet_cond=condition.to(noisy.dtype),
        conditioning_scale=scale,
        return_dict=False,
    )
    return {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}


def save_controlnet(controlnet: ControlNetModel, folder: str | os.PathLike) -> None:
    """Write the stock `save_pretrained` folder (config.json + diffusion_pytorch_model.safetensors).

    Args:
        controlnet: the trained ControlNet.
        folder: the artifact folder; `ControlNetModel.from_pretrained(folder)` loads it.
    """
    controlnet.save_pretrained(folder, safe_serialization=True)


register_method(
    ControlNetConfig,
    domain="diffusion",
    task="control",
    spec=ArtifactSpec(
        recognize=lambda path: path.is_dir() and config_class_name(path) == "ControlNetModel",
        loads_with="ControlNetModel.from_pretrained(folder)",
    ),
)
