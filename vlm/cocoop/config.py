"""CoCoOp's config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from studio.core import MethodConfig, check_range, hfield


@dataclass
class CoCoOpConfig(MethodConfig):
    """CoCoOp: CoOp's context vectors plus a meta-net that shifts them by a bias computed from each image, so
    the prompt is conditioned on the image; the context and the meta-net are trained."""

    method = "cocoop"
    # the prompt layout CoCoOp uses: one context shared by all classes, before the class name
    class_specific: ClassVar[bool] = False
    class_token_position: ClassVar[str] = "end"

    n_ctx: int = hfield(4, "Number of context vectors M (the paper: 4).")
    ctx_init: str = hfield(
        "a photo of a",
        "Words whose embeddings initialise the context (must be n_ctx tokens); '': N(0, 0.02).",
    )
    meta_reduction: int = hfield(
        16, "Hidden width of the meta-net = image feature width / meta_reduction (the paper: 16)."
    )
    epochs: int = hfield(10, "Training epochs (the paper: 10).")
    lr: float = hfield(0.002, "SGD learning rate (cosine schedule; the paper: 0.002).")
    warmup_epochs: int = hfield(1, "Epochs at warmup_lr first.")
    warmup_lr: float = hfield(1e-5, "Constant learning rate during warmup.")
    momentum: float = hfield(0.9, "SGD momentum.")
    weight_decay: float = hfield(5e-4, "SGD weight decay.")
    batch_size: int = hfield(1, "Images per step (the paper: 1); each costs one text-tower pass per class.")

    def validate(self) -> None:
        """Check ranges."""
        check_range("n_ctx", self.n_ctx, 1)
        check_range("meta_reduction", self.meta_reduction, 1)
        check_range("epochs", self.epochs, 1)
        for name in ("lr", "warmup_lr", "momentum", "weight_decay"):
            check_range(name, getattr(self, name), 0.0)
        check_range("warmup_epochs", self.warmup_epochs, 0)
        check_range("batch_size", self.batch_size, 1)
