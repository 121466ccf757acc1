"""Tip-Adapter (a training-free cache of the support features) and Tip-Adapter-F (its keys fine-tuned)."""

from . import model as _model  # noqa: F401  (registers both methods)
from .config import TipAdapterConfig, TipAdapterFConfig
from .model import TipAdapterHead

__all__ = ["TipAdapterConfig", "TipAdapterFConfig", "TipAdapterHead"]
