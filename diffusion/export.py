"""Merged exports: stock diffusers/transformers folders with an artifact's adapter folded into the weights."""

from __future__ import annotations

import os
from pathlib import Path

from .artifacts import ArtifactInfo, ArtifactSpec, artifact_spec, base_model_of, check_artifact, read_artifact


def export_merged_unet(
    pipe,
    artifact: str | os.PathLike | ArtifactInfo,
    output_dir: str | os.PathLike,
    check_base_model: bool = True,
) -> Path:
    """Write `pipe`'s UNet with the artifact's adapter merged in, as a stock `UNet2DConditionModel` folder
    (`from_pretrained` loads it anywhere); the pipeline is not changed.

    Args:
        pipe: the base pipeline the artifact was trained on.
        artifact: an artifact of a method that exports a merged UNet (SVDiff, LoRA, DiffFit).
        output_dir: where `config.json` + `diffusion_pytorch_model.safetensors` go.
        check_base_model: refuse an artifact recorded for another base model.

    Returns:
        `output_dir`.

    Raises:
        ValueError: an artifact for another base model, or of a method without a merged-UNet export (the
            message says how stock diffusers loads it instead).
    """
    info, spec = _checked(pipe, artifact, check_base_model)
    if spec.merged_unet is None:
        raise ValueError(
            f"{info.path} is a {info.kind} artifact, which has no merged-UNet export; stock diffusers loads it "
            f"as it is: {spec.loads_with}"
        )
    return Path(spec.merged_unet(pipe, info.path, output_dir))


def export_merged_components(
    pipe,
    artifact: str | os.PathLike | ArtifactInfo,
    output_dir: str | os.PathLike,
    check_base_model: bool = True,
) -> list[str]:
    """Write every component an SVDiff or DiffFit artifact adapts with its adapter merged in, each as a stock
    folder `output_dir/<component>` (`unet/`, and `text_encoder/`, `text_encoder_2/` when trained), so text
    encoder shifts are kept as well; the pipeline is not changed.

    Args:
        pipe: the base pipeline the artifact was trained on.
        artifact: an SVDiff or DiffFit artifact.
        output_dir: the folder that gets one subfolder per adapted component.
        check_base_model: refuse an artifact recorded for another base model.

    Returns:
        The components written; each loads with its class's `from_pretrained(output_dir, subfolder=name)`.

    Raises:
        ValueError: an artifact for another base model, or one that stock diffusers loads as it is (the
            message says how).
    """
    info, spec = _checked(pipe, artifact, check_base_model)
    if spec.merged_components is None:
        raise ValueError(
            f"{info.path} is a {info.kind} artifact, which stock diffusers loads as it is: {spec.loads_with}"
        )
    return spec.merged_components(pipe, info.path, output_dir)


def _checked(pipe, artifact, check_base_model: bool) -> tuple[ArtifactInfo, ArtifactSpec]:
    """The artifact's record and its method's spec, after refusing one for another base model."""
    info = artifact if isinstance(artifact, ArtifactInfo) else read_artifact(artifact)
    check_artifact(info, base_model=base_model_of(pipe) if check_base_model else None)
    return info, artifact_spec(info.kind)
