"""CoOp: learned prompt context for CLIP's text tower."""

from . import model as _model  # noqa: F401  (registers the method)
from .config import CoOpConfig
from .model import CoOpHead

__all__ = ["CoOpConfig", "CoOpHead"]
