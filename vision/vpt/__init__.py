"""Visual Prompt Tuning (shallow and deep)."""

from . import model as _model  # noqa: F401  (registers the method)
from .config import VPTConfig
from .layer import PromptedBlock

__all__ = ["PromptedBlock", "VPTConfig"]
