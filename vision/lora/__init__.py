"""LoRA on linear layers (fused qkv aware), a baseline for the vision methods."""

from studio.core import LoRALinear

from . import model as _model  # noqa: F401  (registers the method)
from .config import LoRAConfig

__all__ = ["LoRAConfig", "LoRALinear"]
