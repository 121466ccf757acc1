"""Sampling with a LoRA artifact (ours or one from elsewhere, in either layout), and a merged-UNet export."""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace

import torch

from studio.core import inject, merge

from ..artifacts import ArtifactInfo
from ..unload import remove_adapter, requires_grad_flags
from .config import DiffusionLoRAConfig
from .format import Weights, read_lora


@contextlib.contextmanager
def lora_loaded(pipe, weights: Weights) -> Iterator[None]:
    """Inject LoRA layers holding `weights` into `pipe`'s components, then take them out again exactly.

    Raises:
        ValueError: modules of one component with different ranks (not supported here).
    """
    injected = []
    try:
        for component, layers in weights.items():
            ranks = {a.shape[0] for a, _ in layers.values()}
            if len(ranks) > 1:
                raise ValueError(f"the LoRA's {component} layers have different ranks {sorted(ranks)}")
            (rank,) = ranks
            model = getattr(pipe, component)
            injected.append((model, requires_grad_flags(model)))
            config = DiffusionLoRAConfig(r=rank, alpha=float(rank), target_modules=list(layers))
            inject(model, config)
            modules = dict(model.named_modules())
            with torch.no_grad():
                for name, (a, b) in layers.items():
                    modules[name].lora_A[0].copy_(a)
                    modules[name].lora_B[0].copy_(b)
            model.eval()
        yield
    finally:
        for model, flags in reversed(injected):
            remove_adapter(model, flags)


def lora_artifacts_applied(pipe, infos: Sequence[ArtifactInfo]) -> contextlib.AbstractContextManager:
    """`lora_loaded` for the LoRA artifact of a `generate` call."""
    (info,) = infos  # `generate` admits one artifact that changes the pipeline's layers
    return lora_loaded(pipe, read_lora(info.path, pipe))


def export_merged_lora_unet(pipe, artifact: str | os.PathLike, output_dir: str | os.PathLike) -> Path:
    """Write the UNet with the LoRA folded into its weights as a stock `UNet2DConditionModel` folder.

    The pipeline is not changed (a copy of its UNet is merged).

    Returns:
        `output_dir`, loadable with `UNet2DConditionModel.from_pretrained`.
    """
    unet_weights = read_lora(artifact, pipe).get("unet")
    if not unet_weights:
        raise ValueError(f"{artifact} adapts no UNet layer: there is nothing to merge into the UNet")
    holder = SimpleNamespace(unet=copy.deepcopy(pipe.unet))
    weights = {"unet": unet_weights}
    with lora_loaded(holder, weights):
        merge(holder.unet, unload=True)
        holder.unet.save_pretrained(output_dir, safe_serialization=True)
    return Path(output_dir)
