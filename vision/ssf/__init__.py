"""SSF: scaling and shifting features, mergeable into the base weights."""

from . import model as _model  # noqa: F401  (registers the method)
from .config import SSFConfig
from .layer import ScaleShift

__all__ = ["SSFConfig", "ScaleShift"]
