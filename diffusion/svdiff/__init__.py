"""SVDiff: spectral shifts of the UNet's (and optionally the text encoder's) weights."""

from studio.core import register_method

from ..adapter_folders import artifact_applied, is_adapter_folder_of, merged_unet_from_folders
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
        loads_with="the merged UNet: UNet2DConditionModel.from_pretrained(folder)",
        applied=artifact_applied,
        merged_unet=merged_unet_from_folders,
        stock_loadable=False,
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
