"""Artifacts of the methods injected with `studio.core.inject` into a pipeline's components (SVDiff, DiffFit):
one core adapter folder per adapted component (`unet/`, `text_encoder/`), applied for sampling and taken out
again, and exported as a merged stock UNet."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from studio.core import get_adapter_state, load_adapter, merge, save_adapter

from .artifacts import ArtifactInfo
from .unload import remove_adapter, requires_grad_flags

COMPONENTS = ("unet", "text_encoder", "text_encoder_2")
ADAPTER_CONFIG = "adapter_config.json"
MERGED_LOADS_WITH = (
    "the merged components: UNet2DConditionModel.from_pretrained(folder, subfolder='unet'); when the artifact "
    "trained the text encoders, also CLIPTextModel (subfolder='text_encoder') and on SDXL "
    "CLIPTextModelWithProjection (subfolder='text_encoder_2'); pass them to the pipeline's from_pretrained as "
    "unet=..., text_encoder=..., text_encoder_2=..."
)


def adapted_components(folder: str | os.PathLike) -> list[str]:
    """The pipeline components an artifact folder holds an adapter folder for, in `COMPONENTS` order."""
    return [name for name in COMPONENTS if (Path(folder) / name / ADAPTER_CONFIG).is_file()]


def save_adapter_folders(pipe, folder: str | os.PathLike, base_model: str | None) -> list[str]:
    """Save the adapter of every pipeline component that carries one, one adapter folder each.

    Args:
        pipe: the pipeline whose `unet` (and maybe `text_encoder`) carry an injected adapter.
        folder: the artifact folder; gets `unet/` and, if adapted, `text_encoder/`.
        base_model: the base model id to record.

    Returns:
        The components saved.
    """
    saved = []
    for name in COMPONENTS:
        model = getattr(pipe, name, None)
        if model is not None and get_adapter_state(model) is not None:
            save_adapter(model, Path(folder) / name, base_model=base_model)
            saved.append(name)
    return saved


@contextlib.contextmanager
def adapter_folders_applied(pipe, folder: str | os.PathLike) -> Iterator[None]:
    """Apply a saved artifact's adapter folders to `pipe` inside a `with` block, then restore it exactly.

    Args:
        pipe: the base pipeline.
        folder: the artifact folder (`unet/`, maybe `text_encoder/`).
    """
    applied = []
    try:
        for name in adapted_components(folder):
            model = getattr(pipe, name)
            applied.append((model, requires_grad_flags(model)))
            load_adapter(model, Path(folder) / name, check_base_model=False)
            model.eval()
        yield
    finally:
        for model, flags in applied:
            remove_adapter(model, flags)


def artifact_applied(pipe, infos: Sequence[ArtifactInfo]) -> contextlib.AbstractContextManager:
    """`adapter_folders_applied` for the one artifact of the method in a `generate` call (`generate` admits one
    artifact that changes the pipeline's layers)."""
    (info,) = infos
    return adapter_folders_applied(pipe, info.path)


def is_adapter_folder_of(method: str) -> Callable[[Path], bool]:
    """A recognizer (`ArtifactSpec.recognize`) for artifact folders of `method`: its `adapter_config.json`
    at the top or in `unet/`."""

    def recognize(path: Path) -> bool:
        for config in (path / ADAPTER_CONFIG, path / "unet" / ADAPTER_CONFIG):
            if config.is_file() and json.loads(config.read_text()).get("method") == method:
                return True
        return False

    return recognize


def merged_unet_from_folders(pipe, folder: str | os.PathLike, output_dir: str | os.PathLike) -> Path:
    """Write the UNet with an artifact's adapter folded in as a stock `UNet2DConditionModel` folder.

    The pipeline is not changed (a copy of its UNet is merged). Text-encoder shifts the artifact also carries
    are not in this folder: `merged_components_from_folders` writes them too.

    Args:
        pipe: the base pipeline.
        folder: the artifact folder (an SVDiff or DiffFit artifact).
        output_dir: where `config.json` + `diffusion_pytorch_model.safetensors` go.

    Returns:
        `output_dir`, loadable with `UNet2DConditionModel.from_pretrained`.
    """
    left_out = [name for name in adapted_components(folder) if name != "unet"]
    if left_out:
        warnings.warn(
            f"{folder} also adapts {', '.join(left_out)}, which a merged UNet leaves out; "
            "diffusion.export_merged_components writes those too",
            stacklevel=3,
        )
    _save_merged(pipe, folder, "unet", output_dir)
    return Path(output_dir)


def merged_components_from_folders(
    pipe, folder: str | os.PathLike, output_dir: str | os.PathLike
) -> list[str]:
    """Write every component an artifact adapts with its adapter folded in, each as a stock folder
    `output_dir/<component>` (`unet/`, and `text_encoder/`, `text_encoder_2/` when the artifact trained them).

    The pipeline is not changed (copies are merged). Each folder loads with its own class's `from_pretrained`
    (`UNet2DConditionModel`, `CLIPTextModel`, `CLIPTextModelWithProjection`) and goes into the pipeline as
    `unet=`, `text_encoder=`, `text_encoder_2=`.

    Args:
        pipe: the base pipeline.
        folder: the artifact folder (an SVDiff or DiffFit artifact).
        output_dir: the folder that gets one subfolder per adapted component.

    Returns:
        The components written, in `COMPONENTS` order.
    """
    written = adapted_components(folder)
    for name in written:
        _save_merged(pipe, folder, name, Path(output_dir) / name)
    return written


def _save_merged(pipe, folder: str | os.PathLike, name: str, output_dir: str | os.PathLike) -> None:
    """Merge the artifact's `name/` adapter folder into a copy of `pipe.<name>` and save that copy."""
    model = copy.deepcopy(getattr(pipe, name))
    load_adapter(model, Path(folder) / name, check_base_model=False)
    merge(model, unload=True)
    model.save_pretrained(output_dir, safe_serialization=True)
