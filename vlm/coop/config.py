"""CoOp's config."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import MethodConfig, check_range, hfield

POSITIONS = ("end", "middle", "front")


@dataclass
class CoOpConfig(MethodConfig):
    """CoOp: M context vectors replace the words of the prompt; only they are trained."""

    method = "coop"

    n_ctx: int = hfield(4, "Number of context vectors M (the paper uses 4 or 16).")
    ctx_init: str = hfield(
        "a photo of a",
        "Words whose embeddings initialise the context (must be n_ctx tokens); '': N(0, 0.02).",
    )
    class_specific: bool = hfield(False, "One context per class instead of one shared by all classes.")
    class_token_position: str = hfield(
        "end", "Where the class name goes: end, middle or front.", choices=POSITIONS
    )
    epochs: int | None = hfield(None, "Training epochs; None: 50 at 1 shot, 100 at 2–4, 200 at 8 or more.")
    lr: float = hfield(0.002, "SGD learning rate (cosine schedule).")
    warmup_epochs: int = hfield(1, "Epochs at warmup_lr first.")
    warmup_lr: float = hfield(1e-5, "Constant learning rate during warmup.")
    momentum: float = hfield(0.9, "SGD momentum.")
    weight_decay: float = hfield(5e-4, "SGD weight decay.")
    batch_size: int = hfield(32, "Images per step.")

    def validate(self) -> None:
        """Check ranges."""
        check_range("n_ctx", self.n_ctx, 1)
        if self.class_token_position not in POSITIONS:
            raise ValueError(
                f"class_token_position must be one of {POSITIONS}, got {self.class_token_position!r}"
            )
        if self.epochs is not None:
            check_range("epochs", self.epochs, 1)
        for name in ("lr", "warmup_lr", "momentum", "weight_decay"):
            check_range(name, getattr(self, name), 0.0)
        check_range("warmup_epochs", self.warmup_epochs, 0)
        check_range("batch_size", self.batch_size, 1)

    def epochs_for(self, shots: int) -> int:
        """Epochs for `shots` images per class (the paper's schedule unless `epochs` is set)."""
        if self.epochs is not None:
            return self.epochs
        return 50 if shots <= 1 else 100 if shots <= 4 else 200
