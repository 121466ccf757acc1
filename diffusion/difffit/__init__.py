"""DiffFit: bias and norm shifts plus per-block output scales, mergeable into the UNet's weights."""

from studio.core import register_method

from ..adapter_folders import (
    MERGED_LOADS_WITH,
    artifact_applied,
    is_adapter_folder_of,
    merged_components_from_folders,
    merged_unet_from_folders,
)
from ..artifacts import ArtifactSpec
from .config import DiffFitConfig
from .layer import NormAffineShift, ScaledBias
from .model import apply_difffit
from .train import train_difffit

register_method(
    DiffFitConfig,
    apply_difffit,
    domain="diffusion",
    task="personalize",
    train=train_difffit,
    spec=ArtifactSpec(
        recognize=is_adapter_folder_of(DiffFitConfig.method),
        loads_with=MERGED_LOADS_WITH,
        applied=artifact_applied,
        merged_unet=merged_unet_from_folders,
        merged_components=merged_components_from_folders,
        changes_layers=True,
    ),
)

__all__ = ["train_difffit", "DiffFitConfig", "NormAffineShift", "ScaledBias", "apply_difffit"]
