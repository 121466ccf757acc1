"""The project's one training loop, built on HF accelerate.

`train` fits the trainable parameters of a model with checkpointing, exact resume, callbacks and evaluation.
"""

from .callbacks import Callback, TrainState
from .checkpoint import latest_checkpoint, list_checkpoints
from .loop import TrainResult, train
from .schedule import WarmupCosine, cosine_decay
from .validate import check_count, check_number, check_two_classes

__all__ = [
    "Callback",
    "TrainResult",
    "TrainState",
    "WarmupCosine",
    "check_count",
    "check_number",
    "check_two_classes",
    "cosine_decay",
    "latest_checkpoint",
    "list_checkpoints",
    "train",
]
