"""Zero-shot CLIP: the class names' text features are the classifier."""

from . import model as _model  # noqa: F401  (registers the method)
from .config import ZeroShotConfig

__all__ = ["ZeroShotConfig"]
