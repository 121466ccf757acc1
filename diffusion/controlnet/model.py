"""ControlNet: a trainable copy of the UNet encoder joined to the frozen UNet by zero-initialised convs.

Built with diffusers' own `ControlNetModel.from_unet` (SD 1.x/2.x or SDXL UNet: on SDXL it copies the
pooled-text and size-id embedding too), so the zero convolutions make the controlled UNet equal the base UNet at
step 0, and the artifact is a stock `save_pretrained` folder.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from diffusers import ControlNetModel, DiffusionPipeline, UNet2DConditionModel

from ..control.spec import BuiltControl, ControlSetup
from .config import ControlNetConfig

# diffusers' default conditioning embedding, made for a VAE that downsamples by 8 (three stride-2 convs).
DEFAULT_EMBEDDING_CHANNELS = (16, 32, 96, 256)


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
    text: dict[str, Any],
    condition: torch.Tensor,
    image_embeds: torch.Tensor | None = None,
    scale: float = 1.0,
) -> dict[str, object]:
    """The UNet keyword arguments that inject the ControlNet's residuals (its `ControlSpec.residuals`).

    Args:
        controlnet: the ControlNet.
        noisy: noisy latents `[B, C, h, w]`.
        timesteps: `[B]` timesteps.
        text: the UNet's text keyword arguments (`Architecture.unet_kwargs`), which the ControlNet takes
            too: `encoder_hidden_states`, and on SDXL `added_cond_kwargs` (pooled embedding, size ids).
        condition: condition images `[B, 3, H, W]` in [0, 1] (what the stock pipeline feeds).
        image_embeds: unused (a ControlNet takes no reference image).
        scale: conditioning scale.

    Returns:
        `down_block_additional_residuals` and `mid_block_additional_residual` for `UNet2DConditionModel`.
    """
    down, mid = controlnet(
        noisy,
        timesteps,
        **text,
        controlnet_cond=condition.to(noisy.dtype),
        conditioning_scale=scale,
        return_dict=False,
    )
    return {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}


def build(pipe: DiffusionPipeline, config: ControlNetConfig, setup: ControlSetup) -> BuiltControl:
    """A fresh ControlNet for `pipe` (its `ControlSpec.build`; `setup` is not needed)."""
    return BuiltControl(build_controlnet(pipe.unet, config, pipe.vae_scale_factor))
