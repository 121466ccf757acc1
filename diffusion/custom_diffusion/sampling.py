"""Sampling with a Custom Diffusion artifact: its modifier token through diffusers' own loader, its trained
projections injected into the UNet, both taken out again afterwards."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from studio.core import inject

from ..artifacts import ArtifactInfo
from ..textual_inversion import EMBEDDINGS_FILE, textual_inversions_loaded
from ..unload import remove_adapter, requires_grad_flags
from .config import CustomDiffusionConfig
from .format import WEIGHTS_FILE, modifier_file, read_custom_diffusion


@contextlib.contextmanager
def custom_diffusion_applied(pipe, infos: Sequence[ArtifactInfo]) -> Iterator[None]:
    """Apply the one Custom Diffusion artifact of a `generate` call (every modifier token it holds), then
    restore the pipeline exactly.

    Raises:
        ValueError: an artifact made for another UNet.
    """
    (info,) = infos  # `generate` admits one artifact that changes the pipeline's layers
    weights = read_custom_diffusion(info.path, pipe.unet)
    config = CustomDiffusionConfig(train_q_out=any(n.endswith(("to_q", "to_out.0")) for n in weights))
    flags = requires_grad_flags(pipe.unet)
    with contextlib.ExitStack() as stack:
        modifiers = modifier_infos(info)
        if modifiers:
            stack.enter_context(textual_inversions_loaded(pipe, modifiers))
        inject(pipe.unet, config)
        stack.callback(remove_adapter, pipe.unet, flags)
        modules = dict(pipe.unet.named_modules())
        with torch.no_grad():
            for name, weight in weights.items():
                modules[name].weight_copy.copy_(weight)
        pipe.unet.eval()
        yield


def modifier_infos(info: ArtifactInfo) -> list[ArtifactInfo]:
    """One Textual Inversion artifact per modifier token of a Custom Diffusion artifact (its first token's,
    then those of the run's further concepts, each with its own file)."""
    if not (Path(info.path) / EMBEDDINGS_FILE).is_file():
        return []
    more = [
        dataclasses.replace(info, path=Path(info.path) / modifier_file(i), extra={"token": concept["token"]})
        for i, concept in enumerate(info.extra.get("concepts", ()), start=1)
    ]
    return [info, *more]


def is_custom_diffusion_folder(path: Path) -> bool:
    """Whether `path` is a folder with diffusers' Custom Diffusion weights."""
    return path.is_dir() and (path / WEIGHTS_FILE).is_file()
