"""T2I-Adapter: a small conv network whose multi-scale features are added to the frozen UNet's encoder.

The network is diffusers' own `T2IAdapter` (full, light or XL layout), sized from the UNet so that each
feature lands where `UNet2DConditionModel` adds `down_intrablock_additional_residuals`; the artifact is a
stock `save_pretrained` folder.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import DiffusionPipeline, T2IAdapter, UNet2DConditionModel

from ..control.spec import BuiltControl, ControlSetup
from .config import T2IAdapterConfig


def residual_slots(unet: UNet2DConditionModel) -> list[tuple[int, int]]:
    """Where the UNet adds each adapter feature: `(downsampling factor relative to the latent, channels)`.

    A cross-attention down block adds it before its downsampler, any other down block after it.

    Args:
        unet: the UNet.

    Returns:
        One slot per down block.
    """
    factor, slots = 1, []
    for block, channels in zip(unet.down_blocks, unet.config.block_out_channels, strict=True):
        downsamples = block.downsamplers is not None
        before = getattr(block, "has_cross_attention", False)
        slots.append((factor if before or not downsamples else factor * 2, int(channels)))
        factor *= 2 if downsamples else 1
    return slots


def _layout(adapter_type: str, slots: list[tuple[int, int]]) -> list[int] | None:
    """The adapter's `channels` for this layout, or None when its features do not fit `slots`."""
    factors, channels = [f for f, _ in slots], [c for _, c in slots]
    first = factors[0]
    doubling = all(f == first * 2**i for i, f in enumerate(factors))
    if adapter_type == "full_adapter":
        return channels if doubling else None
    if adapter_type == "light_adapter":
        # Its last block repeats the last channel count one scale further down.
        fits = doubling and len(channels) >= 2 and channels[-1] == channels[-2]
        return channels[:-1] if fits else None
    # XL: only its third block downsamples, and blocks after it keep their input's channels.
    xl_factors = [first * (2 if i >= 2 else 1) for i in range(len(factors))]
    same_tail = all(channels[i] == channels[i - 1] for i in range(3, len(channels)))
    return channels if factors == xl_factors and same_tail else None


def build_t2i_adapter(
    unet: UNet2DConditionModel, config: T2IAdapterConfig, vae_scale_factor: int, in_channels: int = 3
) -> T2IAdapter:
    """A freshly initialised `T2IAdapter` whose features fit `unet`.

    Args:
        unet: the frozen base UNet.
        config: the T2I-Adapter config.
        vae_scale_factor: the pipeline's `vae_scale_factor`.
        in_channels: channels of the condition image.

    Returns:
        The adapter (float32, on the UNet's device, trainable).

    Raises:
        ValueError: when the requested layout cannot fit the UNet's down blocks (the message names those that
            can).
    """
    slots = residual_slots(unet)
    order = ("full_adapter", "full_adapter_xl", "light_adapter")
    candidates = order if config.adapter_type == "auto" else (config.adapter_type,)
    for adapter_type in candidates:
        channels = _layout(adapter_type, slots)
        if channels is not None:
            break
    else:
        fitting = [t for t in order if _layout(t, slots) is not None]
        raise ValueError(
            f"a {config.adapter_type} T2I-Adapter cannot fit this UNet (its down blocks take features at "
            f"latent factors/channels {slots}); layouts that fit: {fitting or 'none'}"
        )
    blocks = config.num_res_blocks or (4 if adapter_type == "light_adapter" else 2)
    adapter = T2IAdapter(
        in_channels=in_channels,
        channels=channels,
        num_res_blocks=blocks,
        downscale_factor=vae_scale_factor * slots[0][0],
        adapter_type=adapter_type,
    )
    return adapter.to(device=unet.device, dtype=torch.float32).requires_grad_(True)


def adapter_residuals(
    adapter: T2IAdapter,
    noisy: torch.Tensor,
    timesteps: torch.Tensor,
    text: dict[str, Any],
    condition: torch.Tensor,
    image_embeds: torch.Tensor | None = None,
    scale: float = 1.0,
) -> dict[str, object]:
    """The UNet keyword argument that adds the adapter's features (its `ControlSpec.residuals`).

    Args:
        adapter: the T2I-Adapter.
        noisy: noisy latents `[B, C, h, w]` (only their dtype is used: the adapter sees no noise).
        timesteps: unused (the adapter's features do not depend on the timestep).
        text: unused (nor on the caption).
        condition: condition images `[B, C, H, W]` in [0, 1] (what the stock pipeline feeds).
        image_embeds: unused (a T2I-Adapter takes no reference image).
        scale: adapter conditioning scale.

    Returns:
        `{"down_intrablock_additional_residuals": [features...]}`.
    """
    features = adapter(condition.to(noisy.dtype))
    return {"down_intrablock_additional_residuals": [f * scale for f in features]}


def build(pipe: DiffusionPipeline, config: T2IAdapterConfig, setup: ControlSetup) -> BuiltControl:
    """A fresh T2I-Adapter for `pipe`, taking RGB conditions (its `ControlSpec.build`; `setup` is not needed)."""
    return BuiltControl(build_t2i_adapter(pipe.unet, config, pipe.vae_scale_factor, in_channels=3))
