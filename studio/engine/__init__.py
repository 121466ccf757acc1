"""The project's one training loop, built on HF accelerate.

`train` fits the trainable parameters of a model with checkpointing, exact resume, callbacks and evaluation.
"""

from .callbacks import Callback, TrainState
from .checkpoint import latest_checkpoint, list_checkpoints
from .loop import TrainResult, main_process, train
from .optim import OptimizerFactory, resolve_mixed_precision
from .schedule import WarmupCosine, cosine_decay
from .validate import check_count, check_number, check_two_classes

__all__ = [
    "Callback",
    "OptimizerFactory",
    "TrainResult",
    "TrainState",
    "WarmupCosine",
    "check_count",
    "check_number",
    "check_two_classes",
    "cosine_decay",
    "latest_checkpoint",
    "list_checkpoints",
    "main_process",
    "resolve_mixed_precision",
    "train",
]
