"""CoCoOp: CoOp's prompt context conditioned on each image by a small meta-net."""

from . import model as _model  # noqa: F401  (registers the method)
from .config import CoCoOpConfig
from .model import CoCoOpHead

__all__ = ["CoCoOpConfig", "CoCoOpHead"]
