"""CLIP-Adapter: a residual bottleneck MLP on CLIP's image features."""

from . import model as _model  # noqa: F401  (registers the method)
from .config import ClipAdapterConfig
from .model import ClipAdapterHead

__all__ = ["ClipAdapterConfig", "ClipAdapterHead"]
