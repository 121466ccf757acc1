"""SVDiff: spectral shifts of the UNet's (and optionally the text encoder's) weights."""

from .config import SVDiffConfig
from .layer import NormShift, SpectralShift
from .model import count_singular_values, svd_cache_dir, svd_factors, svdiff_param_groups

__all__ = [
    "NormShift",
    "SVDiffConfig",
    "SpectralShift",
    "count_singular_values",
    "svd_cache_dir",
    "svd_factors",
    "svdiff_param_groups",
]
