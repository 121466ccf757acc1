"""IP-Adapter in training and sampling: building it, applying it to a UNet call, dropping its inputs, and the
sampling call's image embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline
from diffusers.loaders import IPAdapterMixin
from PIL import Image

from ..architecture import Conditioning
from ..artifacts import ArtifactInfo, safetensors_metadata
from ..control.image_encoder import load_image_encoder
from ..control.spec import BuiltControl, ControlSetup, LoadedControl
from .config import IPAdapterConfig
from .weights import initial_state_dict, install, ip_parameters, read_ip_adapter, save_ip_adapter


def build(pipe: DiffusionPipeline, config: IPAdapterConfig, setup: ControlSetup) -> BuiltControl:
    """A fresh IP-Adapter installed (trainable) in `pipe.unet`, with its image encoder and the training
    images' embeddings, mirror images included (its `ControlSpec.build`).

    Args:
        pipe: the base pipeline; `ControlSpec.release` (`weights.uninstall`) takes the adapter out again.
        config: the IP-Adapter config.
        setup: the training images, whether they are mirrored, and the image encoder asked for.

    Returns:
        The control, with no separate module: its layers live in the UNet.
    """
    encoder = load_image_encoder(setup.image_encoder, device=pipe.unet.device)
    images = setup.images
    mirrored = [image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for image in images] if setup.flip else []
    embeds = encoder(images + mirrored).cpu()  # one per latent-cache entry, mirror images included
    install(pipe, [initial_state_dict(pipe.unet, encoder.embed_dim)])
    for p in ip_parameters(pipe.unet):
        p.data = p.data.float()  # trained in fp32 like every control, whatever the UNet's dtype
        p.requires_grad_(True)
    return BuiltControl(None, image_encoder=encoder, image_embeds=embeds)


def ip_residuals(
    module: None,
    noisy: torch.Tensor,
    timesteps: torch.Tensor,
    text: dict[str, Any],
    condition: torch.Tensor | None,
    image_embeds: torch.Tensor,
) -> dict[str, Any]:
    """The UNet keyword argument that feeds the installed adapter its image embeddings (its
    `ControlSpec.residuals`): `image_embeds` `[B, E]` join the text's `added_cond_kwargs` (SDXL's pooled
    embedding and size ids); only `noisy`'s dtype is used besides."""
    added = {**text.get("added_cond_kwargs", {}), "image_embeds": [image_embeds[:, None].to(noisy.dtype)]}
    return {"added_cond_kwargs": added}


def drop_conditions(
    text: Conditioning,
    image_embeds: torch.Tensor,
    empty_text: Conditioning,
    config: IPAdapterConfig,
) -> tuple[Conditioning, torch.Tensor]:
    """Randomly replace captions by the empty caption and image embeddings by zeros, per sample.

    Draws from the global torch RNG (replayed exactly on resume).

    Args:
        text: the captions' conditioning (`[B, L, D]` hidden states, SDXL's pooled embedding `[B, D2]`).
        image_embeds: image embeddings `[B, E]`.
        empty_text: the empty caption's conditioning (one row).
        config: the drop probabilities.

    Returns:
        The (possibly) dropped `(text, image_embeds)`.
    """
    u = torch.rand(image_embeds.shape[0], device=image_embeds.device)
    no_text = u < config.drop_text
    no_image = (u >= config.drop_text) & (u < config.drop_text + config.drop_image)
    both = (u >= config.drop_text + config.drop_image) & (
        u < config.drop_text + config.drop_image + config.drop_both
    )
    text = text.where(no_text | both, empty_text)
    image_embeds = torch.where((no_image | both)[:, None], torch.zeros_like(image_embeds), image_embeds)
    return text, image_embeds


def save(pipe: DiffusionPipeline, control: BuiltControl, folder: Path, record: dict[str, Any]) -> None:
    """Write the trained adapter as `folder/ip_adapter.safetensors`, with the artifact record in its header
    so the file alone describes itself (its registered `save`).

    Args:
        pipe: the pipeline whose UNet holds the trained adapter.
        control: the trained control (its layers live in the UNet).
        folder: the artifact folder.
        record: the artifact record.
    """
    save_ip_adapter(pipe.unet, folder, metadata=safetensors_metadata(record))


def load(info: ArtifactInfo, device: torch.device, dtype: torch.dtype) -> dict[str, dict[str, torch.Tensor]]:
    """Read an IP-Adapter artifact (folder or file) into the nested state dict `weights.install` takes (its
    registered `load`; the stock loader moves it to the UNet's device and dtype on install)."""
    return read_ip_adapter(info.path.parent if info.path.is_file() else info.path)


def call_kwargs(
    target: DiffusionPipeline,
    controls: list[LoadedControl],
    images: list[Image.Image],
    scales: list[float],
    guidance_scale: float,
) -> dict[str, Any]:
    """The sampling call's `ip_adapter_image_embeds` for installed IP-Adapters (its `ControlSpec.call_kwargs`).

    Args:
        target: the pipeline that samples (its UNet holds the adapters).
        controls: the IP-Adapters, with their loaded image encoders, in the order they were installed.
        images: one reference image per adapter, at the pipeline's resolution.
        scales: one IP-Adapter scale per adapter.
        guidance_scale: the call's guidance scale (above 1, each embedding is paired with the unconditional one).

    Returns:
        `{"ip_adapter_image_embeds": [...]}`.

    Raises:
        ValueError: `target`'s class cannot take IP-Adapters.
    """
    if not isinstance(target, IPAdapterMixin):
        raise ValueError(
            f"diffusers' {type(target).__name__} has no IP-Adapter support; use an IP-Adapter alone, with "
            "TI/SVDiff, or with a control whose pipeline takes one"
        )
    target.set_ip_adapter_scale(scales)
    guided = guidance_scale > 1 and target.unet.config.time_cond_proj_dim is None
    embeds = []
    for control, picture in zip(controls, images, strict=True):
        embedding = control.image_encoder([picture])[:, None].to(target.unet.dtype)  # [1 image, 1, D]
        # The stock pipeline's unconditional image input is a zero embedding, as dropped in training.
        embeds.append(torch.cat([torch.zeros_like(embedding), embedding]) if guided else embedding)
    return {"ip_adapter_image_embeds": embeds}
