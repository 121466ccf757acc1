"""Custom Diffusion's weights in diffusers' format (`pytorch_custom_diffusion_weights.safetensors`).

Stock `unet.load_attn_procs(folder, weight_name=...)` builds one `CustomDiffusionAttnProcessor` per attention
layer from it: cross-attentions from their `to_k_custom_diffusion` / `to_v_custom_diffusion` (and maybe
`to_q_…`, `to_out_custom_diffusion.0`) weights, every other attention from an empty entry. diffusers' own
safetensors export drops those empty entries (and then cannot load its file); a zero-length tensor keeps them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from studio.core import adapter_layers, read_tensors, save_tensors

from ..textual_inversion import EMBEDDINGS_FILE
from .layer import TrainedCopy

WEIGHTS_FILE = "pytorch_custom_diffusion_weights.safetensors"
PROCESSOR_KEYS = {"to_k": "to_k_custom_diffusion.weight", "to_v": "to_v_custom_diffusion.weight",
                  "to_q": "to_q_custom_diffusion.weight", "to_out.0": "to_out_custom_diffusion.0.weight"}  # fmt: skip
"""Projection (relative to its attention module) -> its key in the processor's state dict."""
OUT_BIAS = "to_out_custom_diffusion.0.bias"
"""The stock processor's trained output projection has a bias, which the loader requires; ours trains the weight
only, so the file carries the base layer's bias there."""


def modifier_file(index: int) -> str:
    """The file of the `index`-th modifier token's embedding in an artifact: `learned_embeds.safetensors` for the
    first (so `pipe.load_textual_inversion(folder)` finds it), `learned_embeds-<index + 1>.safetensors` after
    (`pipe.load_textual_inversion(folder, weight_name=...)`), each in Textual Inversion's format."""
    return EMBEDDINGS_FILE if index == 0 else f"learned_embeds-{index + 1}.safetensors"


def save_custom_diffusion(
    unet: nn.Module, folder: str | os.PathLike, metadata: dict[str, str] | None = None
) -> Path:
    """Write the UNet's trained projections in diffusers' Custom Diffusion format (atomically).

    Returns:
        The file written.
    """
    trained = {name: layer for name, layer in adapter_layers(unet) if isinstance(layer, TrainedCopy)}
    if not trained:
        raise ValueError("the UNet carries no Custom Diffusion layers to save")
    tensors: dict[str, torch.Tensor] = {}
    for attention in _attention_names(unet):
        processor = f"{attention}.processor"
        own = {
            rel: trained[f"{attention}.{rel}"] for rel in PROCESSOR_KEYS if f"{attention}.{rel}" in trained
        }
        if not own:
            tensors[processor] = torch.zeros(0)  # the stock loader's mark of a processor without weights
        for rel, layer in own.items():
            tensors[f"{processor}.{PROCESSOR_KEYS[rel]}"] = layer.weight_copy.detach().float().contiguous()
            if rel == "to_out.0" and layer.base_layer.bias is not None:
                tensors[f"{processor}.{OUT_BIAS}"] = layer.base_layer.bias.detach().float().contiguous()
    file = Path(folder) / WEIGHTS_FILE
    save_tensors(file, tensors, metadata=metadata)
    return file


def read_custom_diffusion(folder: str | os.PathLike, unet: nn.Module) -> dict[str, torch.Tensor]:
    """The trained projection weights of a Custom Diffusion artifact, by UNet module name.

    Raises:
        ValueError: a weight for a module the UNet lacks, or of another shape (an artifact for another model).
    """
    file = Path(folder) / WEIGHTS_FILE
    by_key = {
        f"{a}.processor.{key}": f"{a}.{rel}"
        for a in _attention_names(unet)
        for rel, key in PROCESSOR_KEYS.items()
    }
    modules = dict(unet.named_modules())
    weights = {}
    for key, tensor in read_tensors(file, "Custom Diffusion weights").items():
        if tensor.numel() == 0:
            continue
        if key.endswith(OUT_BIAS):
            layer = modules.get(key.removesuffix(f".processor.{OUT_BIAS}") + ".to_out.0")
            _check_base_bias(file, key, layer, tensor)
            continue
        name = by_key.get(key)
        if name is None or modules[name].weight.shape != tensor.shape:
            raise ValueError(f"{file.name}: {key!r} does not fit this UNet (an artifact for another model?)")
        weights[name] = tensor
    return weights


def _check_base_bias(file: Path, key: str, layer: nn.Module | None, bias: torch.Tensor) -> None:
    # Sampling applies trained weights only, so an output bias is usable only when it is the base layer's.
    if layer is None or layer.bias is None or layer.bias.shape != bias.shape:
        raise ValueError(f"{file.name}: {key!r} does not fit this UNet (an artifact for another model?)")
    if not torch.allclose(layer.bias.detach().float(), bias, atol=1e-4):
        raise ValueError(
            f"{file.name}: {key!r} is a trained output bias, which generate does not apply; load this "
            "artifact with stock diffusers' unet.load_attn_procs instead"
        )


def _attention_names(unet: nn.Module) -> list[str]:
    return [name[: -len(".processor")] for name in unet.attn_processors]
