"""AdaptFormer: parallel bottleneck adapters beside the MLPs."""

from . import model as _model  # noqa: F401  (registers the method)
from .config import AdaptFormerConfig
from .layer import AdaptFormerBlock

__all__ = ["AdaptFormerBlock", "AdaptFormerConfig"]
