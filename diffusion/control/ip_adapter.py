"""IP-Adapter: decoupled cross-attention on image tokens projected from a CLIP image embedding.

For every cross-attention layer of the frozen UNet, `to_k_ip`/`to_v_ip` (initialised from the layer's
`to_k`/`to_v`) attend to 4 tokens projected from the image embedding; the output is text attention + scale ·
image attention. The layers are installed by diffusers' own `load_ip_adapter` from our initial state dict, so
the model we train is exactly the one a stock pipeline rebuilds from the saved file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from diffusers.models.embeddings import ImageProjection, MultiIPAdapterImageProjection
from safetensors.torch import load_file

from studio.core import check_range, hfield, register_method, save_tensors

from ..artifacts import ArtifactSpec, safetensors_keys
from .config import ControlConfig

WEIGHTS_NAME = "ip_adapter.safetensors"
NUM_TOKENS = 4  # what diffusers' `ImageProjection` loader assumes for a plain IP-Adapter


@dataclass
class IPAdapterConfig(ControlConfig):
    """IP-Adapter hyperparameters.

    Args:
        lr: learning rate; the authors use 1e-4 with weight decay 1e-2.
        weight_decay: AdamW weight decay.
        scale: IP-Adapter scale used by `generate` unless given there.
        drop_text: probability of training a sample with the empty caption.
        drop_image: probability of training a sample with a zero image embedding (what sampling uses as the
            unconditional image input).
        drop_both: probability of dropping both (teaches the unconditional prediction for guidance).
    """

    method = "ip_adapter"
    merge_unsupported = "IP-Adapter attends to image tokens; it has nothing to fold into the UNet"

    lr: float = hfield(1e-4, "Learning rate (AdamW); the authors use 1e-4.")
    weight_decay: float = hfield(1e-2, "AdamW weight decay; the authors use 1e-2.")
    scale: float = hfield(1.0, "Default IP-Adapter scale at sampling (0 gives the base model).")
    drop_text: float = hfield(0.05, "Probability of training a sample with an empty caption (authors: 0.05).")
    drop_image: float = hfield(0.05, "Probability of training a sample without its image (authors: 0.05).")
    drop_both: float = hfield(0.05, "Probability of dropping caption and image together (authors: 0.05).")

    def validate(self) -> None:
        """Raise `ValueError` for probabilities outside [0, 1] or summing above 1."""
        super().validate()
        for name in ("drop_text", "drop_image", "drop_both"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        if self.drop_text + self.drop_image + self.drop_both > 1:
            raise ValueError("drop_text + drop_image + drop_both must be <= 1")


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


def install(pipe: StableDiffusionPipeline, state_dicts: list[dict[str, dict[str, torch.Tensor]]]) -> None:
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


def uninstall(pipe: StableDiffusionPipeline) -> None:
    """Remove loaded IP-Adapters from `pipe.unet` (a no-op when there are none).

    Args:
        pipe: the pipeline.
    """
    if isinstance(pipe.unet.encoder_hid_proj, MultiIPAdapterImageProjection):
        _shell(pipe).unload_ip_adapter()


def _shell(pipe: StableDiffusionPipeline) -> StableDiffusionPipeline:
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


def drop_conditions(
    text: torch.Tensor,
    image_embeds: torch.Tensor,
    empty_text: torch.Tensor,
    config: IPAdapterConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly replace captions by the empty caption and image embeddings by zeros, per sample.

    Draws from the global torch RNG (replayed exactly on resume).

    Args:
        text: text embeddings `[B, L, D]`.
        image_embeds: image embeddings `[B, E]`.
        empty_text: the empty caption's embedding `[1, L, D]`.
        config: the drop probabilities.

    Returns:
        The (possibly) dropped `(text, image_embeds)`.
    """
    u = torch.rand(text.shape[0], device=text.device)
    no_text = u < config.drop_text
    no_image = (u >= config.drop_text) & (u < config.drop_text + config.drop_image)
    both = (u >= config.drop_text + config.drop_image) & (
        u < config.drop_text + config.drop_image + config.drop_both
    )
    text = torch.where((no_text | both)[:, None, None], empty_text.to(text), text)
    image_embeds = torch.where((no_image | both)[:, None], torch.zeros_like(image_embeds), image_embeds)
    return text, image_embeds


def is_ip_adapter_file(path: Path) -> bool:
    """Whether `path` is an IP-Adapter weights file (`image_proj.*` and `ip_adapter.*` tensors)."""
    return path.suffix == ".safetensors" and any(
        k.startswith(("image_proj.", "ip_adapter.")) for k in safetensors_keys(path)
    )


register_method(
    IPAdapterConfig,
    domain="diffusion",
    task="control",
    spec=ArtifactSpec(
        recognize=is_ip_adapter_file,
        loads_with="pipe.load_ip_adapter(folder, subfolder='', weight_name=file)",
    ),
)
