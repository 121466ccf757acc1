"""SVDiff artifacts on a pipeline: save the shifts, apply them for sampling, export a merged UNet."""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from studio.core import load_adapter, merge, save_adapter

from ..artifacts import ArtifactInfo
from ..unload import remove_adapter, requires_grad_flags

COMPONENTS = ("unet", "text_encoder")


def save_svdiff(pipe, folder: str | os.PathLike, base_model: str | None) -> list[str]:
    """Save the shifts of every pipeline component that carries SVDiff, one adapter folder each.

    Args:
        pipe: the pipeline whose `unet` (and maybe `text_encoder`) carry SVDiff.
        folder: the artifact folder; gets `unet/` and, if trained, `text_encoder/`.
        base_model: the base model id to record.

    Returns:
        The components saved.
    """
    from studio.core import get_adapter_state

    saved = []
    for name in COMPONENTS:
        model = getattr(pipe, name, None)
        if model is not None and get_adapter_state(model) is not None:
            save_adapter(model, Path(folder) / name, base_model=base_model)
            saved.append(name)
    return saved


@contextlib.contextmanager
def svdiff_applied(pipe, folder: str | os.PathLike) -> Iterator[None]:
    """Apply a saved SVDiff artifact to `pipe` inside a `with` block, then restore the pipeline exactly.

    Args:
        pipe: the base pipeline.
        folder: the SVDiff artifact folder.
    """
    applied = []
    try:
        for name in COMPONENTS:
            if (Path(folder) / name / "adapter_config.json").is_file():
                model = getattr(pipe, name)
                applied.append((model, requires_grad_flags(model)))
                load_adapter(model, Path(folder) / name, check_base_model=False)
                model.eval()
        yield
    finally:
        for model, flags in applied:
            remove_adapter(model, flags)


def svdiff_artifacts_applied(pipe, infos: Sequence[ArtifactInfo]) -> contextlib.AbstractContextManager:
    """`svdiff_applied` for the SVDiff artifacts of one `generate` call: at most one, since shifts of the same
    weights do not add up.

    Raises:
        ValueError: more than one SVDiff artifact.
    """
    if len(infos) > 1:
        raise ValueError(f"at most one SVDiff artifact at a time, got {[str(i.path) for i in infos]}")
    return svdiff_applied(pipe, infos[0].path)


def is_svdiff_folder(path: Path) -> bool:
    """Whether `path` is an SVDiff artifact folder: `adapter_config.json` of method `svdiff`, at its top or
    in `unet/`."""
    for config in (path / "adapter_config.json", path / "unet" / "adapter_config.json"):
        if config.is_file() and json.loads(config.read_text()).get("method") == "svdiff":
            return True
    return False


def export_merged_unet(pipe, folder: str | os.PathLike, output_dir: str | os.PathLike) -> Path:
    """Write the UNet with the SVDiff shifts folded in as a stock `UNet2DConditionModel` folder.

    The pipeline is not changed (a copy of its UNet is merged).

    Args:
        pipe: the base pipeline.
        folder: the SVDiff artifact folder.
        output_dir: where `config.json` + `diffusion_pytorch_model.safetensors` go.

    Returns:
        `output_dir`, loadable with `UNet2DConditionModel.from_pretrained`.
    """
    unet = copy.deepcopy(pipe.unet)
    load_adapter(unet, Path(folder) / "unet", check_base_model=False)
    merge(unet, unload=True)
    unet.save_pretrained(output_dir, safe_serialization=True)
    return Path(output_dir)
