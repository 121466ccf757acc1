"""SVDiff: spectral shifts of the UNet's (and optionally the text encoder's) weights."""

from studio.core import register_method

from ..adapter_folders import (
    MERGED_LOADS_WITH,
    artifact_applied,
    is_adapter_folder_of,
    merged_components_from_folders,
    merged_unet_from_folders,
)
from ..artifacts import ArtifactSpec
from .config import SVDiffConfig
from .layer import NormShift, SpectralShift
from .model import apply_svdiff, count_singular_values, svd_cache_dir, svd_factors, svdiff_param_groups
from .train import train_svdiff

register_method(
    SVDiffConfig,
    apply_svdiff,
    domain="diffusion",
    task="personalize",
    train=train_svdiff,
    spec=ArtifactSpec(
        recognize=is_adapter_folder_of(SVDiffConfig.method),
        loads_with=MERGED_LOADS_WITH,
        applied=artifact_applied,
        merged_unet=merged_unet_from_folders,
        merged_components=merged_components_from_folders,
        changes_layers=True,
    ),
)

__all__ = [
    "NormShift",
    "SVDiffConfig",
    "SpectralShift",
    "apply_svdiff",
    "count_singular_values",
    "svd_cache_dir",
    "svd_factors",
    "svdiff_param_groups",
    "train_svdiff",
]
