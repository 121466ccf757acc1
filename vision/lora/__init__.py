"""LoRA on linear layers (fused qkv aware), a baseline for the vision methods."""

from . import model as _model  # noqa: F401  (registers the method)
from .config import LoRAConfig
from .layer import LoRALinear

__all__ = ["LoRAConfig", "LoRALinear"]
