"""Linear probe: logistic regression on frozen CLIP image features."""

from . import model as _model  # noqa: F401  (registers the method)
from .config import ClipLinearProbeConfig

__all__ = ["ClipLinearProbeConfig"]
