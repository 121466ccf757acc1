"""T2I-Adapter: a small conv network whose multi-scale features are added to the frozen UNet's encoder.

The network is diffusers' own `T2IAdapter` (full, light or XL layout), sized from the UNet so that each
feature lands where `UNet2DConditionModel` adds `down_intrablock_additional_residuals`; the artifact is a
stock `save_pretrained` folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from diffusers import T2IAdapter, UNet2DConditionModel

from studio.core import hfield, register_method

from ..artifacts import ArtifactSpec, config_class_name
from .config import ControlConfig

ADAPTER_TYPES = ("auto", "full_adapter", "light_adapter", "full_adapter_xl")


@dataclass
class T2IAdapterConfig(ControlConfig):
    """T2I-Adapter hyperparameters.

    Args:
        lr: learning rate; the authors use 1e-5.
        scale: `adapter_conditioning_scale` used by `generate` unless given there.
        adapter_type: `"full_adapter"` (≈77M on SD 1.5), `"light_adapter"`, `"full_adapter_xl"`, or
            `"auto"`: the first layout, in that order of preference (full, XL, light), whose features fit the UNet.
        num_res_blocks: residual blocks per scale; None: 2 for the full layouts, 4 for the light one.
        early_timesteps: draw training timesteps as `T·(1 - u³)` (`diffusion.denoise.cubic_timesteps`), which
            favours the noisy early sampling steps where the layout is decided, as the authors do; False: uniform.
    """

    method = "t2i_adapter"
    merge_unsupported = "a T2I-Adapter is a separate network; it is never folded into the UNet"

    lr: float = hfield(1e-5, "Learning rate (AdamW); the authors use 1e-5.")
    scale: float = hfield(1.0, "Default adapter_conditioning_scale at sampling (0 switches it off).")
    adapter_type: str = hfield(
        "auto",
        "full_adapter (≈77M on SD 1.5), light_adapter, full_adapter_xl, or auto (the first that fits the UNet).",
        choices=ADAPTER_TYPES,
    )
    num_res_blocks: int | None = hfield(None, "Residual blocks per scale; None: 2 (full) or 4 (light).")
    early_timesteps: bool = hfield(
        True, "Draw training timesteps as T·(1-u³), favouring early, noisy steps (the authors' schedule)."
    )

    def validate(self) -> None:
        """Raise `ValueError` for an unknown layout or a non-positive block count."""
        super().validate()
        if self.adapter_type not in ADAPTER_TYPES:
            raise ValueError(f"adapter_type must be one of {ADAPTER_TYPES}, got {self.adapter_type!r}")
        if self.num_res_blocks is not None and self.num_res_blocks < 1:
            raise ValueError(f"num_res_blocks must be >= 1, got {self.num_res_blocks}")


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


def adapter_residuals(adapter: T2IAdapter, condition: torch.Tensor, scale: float = 1.0) -> dict[str, object]:
    """The UNet keyword argument that adds the adapter's features.

    Args:
        adapter: the T2I-Adapter.
        condition: condition images `[B, C, H, W]` in [0, 1] (what the stock pipeline feeds).
        scale: adapter conditioning scale.

    Returns:
        `{"down_intrablock_additional_residuals": [features...]}`.
    """
    features = adapter(condition)
    return {"down_intrablock_additional_residuals": [f * scale for f in features]}


def save_t2i_adapter(adapter: T2IAdapter, folder: str | os.PathLike) -> None:
    """Write the stock `save_pretrained` folder (config.json + diffusion_pytorch_model.safetensors).

    Args:
        adapter: the trained adapter.
        folder: the artifact folder; `T2IAdapter.from_pretrained(folder)` loads it.
    """
    adapter.save_pretrained(folder, safe_serialization=True)


register_method(
    T2IAdapterConfig,
    domain="diffusion",
    task="control",
    spec=ArtifactSpec(
        recognize=lambda path: path.is_dir() and config_class_name(path) in ("T2IAdapter", "MultiAdapter"),
        loads_with="T2IAdapter.from_pretrained(folder)",
    ),
)
