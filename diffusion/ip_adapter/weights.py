"""IP-Adapter's weights: a fresh adapter in the stock layout, installing it into a UNet with diffusers' own
loader, reading it back, and its file.

For every cross-attention layer of the frozen UNet, `to_k_ip`/`to_v_ip` (initialised from the layer's
`to_k`/`to_v`) attend to 4 tokens projected from the image embedding; the output is text attention + scale ·
image attention. The layers are installed by diffusers' own `load_ip_adapter` from our initial state dict, so
the model we train is exactly the one a stock pipeline rebuilds from the saved file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.models.embeddings import ImageProjection, MultiIPAdapterImageProjection
from safetensors.torch import load_file

from studio.core import save_tensors

from ..artifacts import safetensors_keys

WEIGHTS_NAME = "ip_adapter.safetensors"
NUM_TOKENS = 4  # what diffusers' `ImageProjection` loader assumes for a plain IP-Adapter


def _cross_attention_names(unet: UNet2DConditionModel) -> list[str]:
    """Attention modules that get image keys/values, in the order diffusers numbers them (1, 3, 5, ...)."""
    return [
        name.removesuffix(".processor")
        for name in unet.attn_processors
        if not name.endswith("attn1.processor") and "motion_modules" not in name
    ]


def initial_state_dict(
    unet: UNet2DConditionModel, image_embed_dim: int
) -> dict[str, dict[str, torch.Tensor]]:
    """A fresh IP-Adapter in the layout `load_ip_adapter` reads: a randomly initialised projection, and image
    keys/values copied from each cross-attention layer's text keys/values.

    Args:
        unet: the base UNet.
        image_embed_dim: width of the image encoder's embedding.

    Returns:
        `{"image_proj": {...}, "ip_adapter": {"1.to_k_ip.weight": ..., ...}}`.
    """
    proj = ImageProjection(image_embed_dim, unet.config.cross_attention_dim, NUM_TOKENS)
    image_proj = {f"proj.{k}": v for k, v in proj.image_embeds.state_dict().items()}
    image_proj.update({f"norm.{k}": v for k, v in proj.norm.state_dict().items()})
    ip = {}
    for i, name in enumerate(_cross_attention_names(unet)):
        attn = unet.get_submodule(name)
        ip[f"{2 * i + 1}.to_k_ip.weight"] = attn.to_k.weight.detach().clone()
        ip[f"{2 * i + 1}.to_v_ip.weight"] = attn.to_v.weight.detach().clone()
    return {"image_proj": image_proj, "ip_adapter": ip}


def install(pipe: DiffusionPipeline, state_dicts: list[dict[str, dict[str, torch.Tensor]]]) -> None:
    """Load IP-Adapters into `pipe.unet` with the stock loader (replacing any loaded before).

    Args:
        pipe: the pipeline; its UNet gets IP-Adapter attention processors and the image projections.
        state_dicts: one `{"image_proj": ..., "ip_adapter": ...}` per adapter.
    """
    uninstall(pipe)
    # It warns that without an image encoder only `ip_adapter_image_embeds` work: what we always pass.
    loader_log = logging.getLogger("diffusers.loaders.ip_adapter")
    level = loader_log.level
    loader_log.setLevel(logging.ERROR)
    try:
        _shell(pipe).load_ip_adapter(
            state_dicts,
            subfolder=[""] * len(state_dicts),
            weight_name=[WEIGHTS_NAME] * len(state_dicts),
            image_encoder_folder=None,
        )
    finally:
        loader_log.setLevel(level)


def uninstall(pipe: DiffusionPipeline) -> None:
    """Remove loaded IP-Adapters from `pipe.unet` (a no-op when there are none).

    Args:
        pipe: the pipeline.
    """
    if isinstance(pipe.unet.encoder_hid_proj, MultiIPAdapterImageProjection):
        _shell(pipe).unload_ip_adapter()


def _shell(pipe: DiffusionPipeline) -> StableDiffusionPipeline:
    """A pipeline sharing `pipe`'s modules, so the stock loader changes the shared UNet and nothing else of
    `pipe` (it would register a feature extractor, and unloading would drop an image encoder)."""
    names = ("vae", "text_encoder", "tokenizer", "unet", "scheduler", "safety_checker", "feature_extractor")
    return StableDiffusionPipeline(
        **{name: pipe.components.get(name) for name in names},
        image_encoder=None,
        requires_safety_checker=False,
    )


def ip_parameters(unet: UNet2DConditionModel) -> list[torch.nn.Parameter]:
    """The trainable IP-Adapter parameters inside a UNet with one installed adapter.

    Args:
        unet: the UNet after `install`.

    Returns:
        The projection's parameters and every `to_k_ip`/`to_v_ip` weight.
    """
    params = list(unet.encoder_hid_proj.parameters())
    for name in _cross_attention_names(unet):
        params += list(unet.get_submodule(name).processor.parameters())
    return params


def state_dict_from_unet(unet: UNet2DConditionModel) -> dict[str, torch.Tensor]:
    """Read the installed (single) IP-Adapter back in the stock flat layout.

    Args:
        unet: the UNet after `install` (and training).

    Returns:
        `image_proj.*` and `ip_adapter.{k}.to_k_ip/to_v_ip.weight` tensors, k = 1, 3, 5, ...
    """
    proj = unet.encoder_hid_proj.image_projection_layers[0]
    out = {f"image_proj.proj.{k}": v for k, v in proj.image_embeds.state_dict().items()}
    out.update({f"image_proj.norm.{k}": v for k, v in proj.norm.state_dict().items()})
    for i, name in enumerate(_cross_attention_names(unet)):
        processor = unet.get_submodule(name).processor
        out[f"ip_adapter.{2 * i + 1}.to_k_ip.weight"] = processor.to_k_ip[0].weight
        out[f"ip_adapter.{2 * i + 1}.to_v_ip.weight"] = processor.to_v_ip[0].weight
    return out


def save_ip_adapter(
    unet: UNet2DConditionModel, folder: str | os.PathLike, metadata: dict[str, str] | None = None
) -> None:
    """Write `folder/ip_adapter.safetensors` (atomically), loadable with
    `pipe.load_ip_adapter(folder, subfolder="", weight_name="ip_adapter.safetensors", image_encoder_folder=None)`.

    Args:
        unet: the UNet with the trained adapter installed.
        folder: the artifact folder.
        metadata: safetensors header entries (the artifact record, so the file alone is self-describing).
    """
    save_tensors(os.path.join(folder, WEIGHTS_NAME), state_dict_from_unet(unet), metadata=metadata)


def read_ip_adapter(folder: str | os.PathLike) -> dict[str, dict[str, torch.Tensor]]:
    """Read a saved IP-Adapter into the nested layout `install` takes.

    Args:
        folder: the artifact folder.

    Returns:
        `{"image_proj": ..., "ip_adapter": ...}`.

    Raises:
        FileNotFoundError: when the folder has no `ip_adapter.safetensors`.
    """
    path = os.path.join(folder, WEIGHTS_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{folder} holds no {WEIGHTS_NAME}; not an IP-Adapter artifact")
    nested: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in load_file(path).items():
        group, _, rest = key.partition(".")
        nested[group][rest] = value
    return nested


def is_ip_adapter_file(path: Path) -> bool:
    """Whether `path` is an IP-Adapter weights file (`image_proj.*` and `ip_adapter.*` tensors)."""
    return path.suffix == ".safetensors" and any(
        k.startswith(("image_proj.", "ip_adapter.")) for k in safetensors_keys(path)
    )
