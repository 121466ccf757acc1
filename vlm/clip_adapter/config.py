"""CLIP-Adapter's config."""

from __future__ import annotations

import math
from dataclasses import dataclass

from studio.core import MethodConfig, check_range, hfield


@dataclass
class ClipAdapterConfig(MethodConfig):
    """CLIP-Adapter: a bottleneck MLP on the image feature, mixed in residually with ratio α,
    `f' = α·A(f) + (1 − α)·f`, classified by the frozen zero-shot text classifier; only the MLP is trained."""

    method = "clip_adapter"

    ratio: float = hfield(
        0.2,
        "Residual ratio α; used when no validation split is possible (the paper: 0.2 generic, 0.6 fine-grained).",
    )
    search: bool = hfield(
        True, "Choose the ratio from ratio_grid on a validation split carved from the support set."
    )
    ratio_grid: list[float] = hfield([0.2, 0.4, 0.6, 0.8], "Ratios tried on the validation split.")
    reduction: int = hfield(4, "Hidden width of the MLP = feature width / reduction (the paper: 4).")
    augment_views: int = hfield(
        0,
        "Augmented views (random resized crop + flip) of every support image, one per epoch; 0: the plain image.",
    )
    epochs: int = hfield(50, "Training epochs (at least min_steps optimizer steps in all).")
    min_steps: int = hfield(
        300, "Fewest optimizer steps: small support sets train more epochs to reach them."
    )
    lr: float = hfield(1e-3, "AdamW learning rate (cosine schedule).")
    weight_decay: float = hfield(0.01, "AdamW weight decay.")
    batch_size: int = hfield(32, "Images per step.")

    def validate(self) -> None:
        """Check ranges."""
        check_range("ratio", self.ratio, 0.0, 1.0)
        if not self.ratio_grid or min(self.ratio_grid) < 0 or max(self.ratio_grid) > 1:
            raise ValueError(
                f"ratio_grid must be a non-empty list of values in [0, 1], got {self.ratio_grid!r}"
            )
        check_range("reduction", self.reduction, 1)
        check_range("augment_views", self.augment_views, 0)
        check_range("epochs", self.epochs, 1)
        check_range("min_steps", self.min_steps, 0)
        check_range("lr", self.lr, 0.0)
        check_range("weight_decay", self.weight_decay, 0.0)
        check_range("batch_size", self.batch_size, 1)

    def epochs_for(self, n: int) -> int:
        """Training epochs for `n` support images: `epochs`, or more to reach `min_steps` steps."""
        return max(self.epochs, math.ceil(self.min_steps / math.ceil(n / self.batch_size)))
