"""Tip-Adapter's and Tip-Adapter-F's configs."""

from __future__ import annotations

import math
from dataclasses import dataclass

from studio.core import MethodConfig, check_range, hfield


@dataclass
class TipAdapterConfig(MethodConfig):
    """Tip-Adapter: a key–value cache of the support features added to the zero-shot logits; no training."""

    method = "tip_adapter"

    augment_views: int = hfield(
        0,
        "Augmented views (random resized crop + flip) averaged into each cache key; 0: the plain image. "
        "The paper uses 10 (about 11 image-tower passes over the support set on a cold feature cache).",
    )
    alpha: float = hfield(1.0, "Weight of the cache logits; used when no validation split is possible.")
    beta: float = hfield(5.5, "Sharpness of the key affinities; used when no validation split is possible.")
    search: bool = hfield(
        True, "Grid-search alpha and beta on a validation split carved from the support set."
    )
    alpha_grid: list[float] = hfield(
        [0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0],
        "Values of alpha tried on the validation split (0: zero-shot; large: the cache alone).",
    )
    beta_grid: list[float] = hfield(
        [0.5, 1.0, 2.0, 3.5, 5.5, 8.0, 12.0, 20.0, 35.0, 60.0, 100.0, 200.0], "Values of beta tried."
    )

    def validate(self) -> None:
        """Check ranges."""
        check_range("augment_views", self.augment_views, 0)
        check_range("alpha", self.alpha, 0.0)
        check_range("beta", self.beta, 0.0)
        for name in ("alpha_grid", "beta_grid"):
            values = getattr(self, name)
            if not values or min(values) < 0:
                raise ValueError(f"{name} must be a non-empty list of values >= 0, got {values!r}")


@dataclass
class TipAdapterFConfig(TipAdapterConfig):
    """Tip-Adapter-F: the cache keys become trainable (AdamW on cached features, one augmented view per epoch
    when `augment_views > 0`), trained with the alpha and beta Tip-Adapter chose; the best epoch, alpha and
    beta are chosen on a validation split, then the keys are refit on the whole support set."""

    method = "tip_adapter_f"

    lr: float = hfield(1e-3, "AdamW learning rate of the cache keys (cosine schedule).")
    epochs: int = hfield(20, "Training epochs; each epoch sees one cached augmented view of every image.")
    min_steps: int = hfield(
        100,
        "Fewest optimizer steps: a support set that fits in one batch trains ceil(min_steps / steps per "
        "epoch) epochs instead of `epochs` (the paper's 20 epochs meant ~1,000 steps on ImageNet); the best "
        "epoch is still chosen on the validation split. 0: exactly `epochs`.",
    )
    batch_size: int = hfield(256, "Images per step.")
    weight_decay: float = hfield(0.01, "AdamW weight decay.")

    def validate(self) -> None:
        """Check ranges."""
        super().validate()
        check_range("lr", self.lr, 0.0)
        check_range("epochs", self.epochs, 1)
        check_range("min_steps", self.min_steps, 0)
        check_range("batch_size", self.batch_size, 1)
        check_range("weight_decay", self.weight_decay, 0.0)

    def epochs_for(self, n: int) -> int:
        """Training epochs for `n` support images: `epochs`, or more to reach `min_steps` steps."""
        return max(self.epochs, math.ceil(self.min_steps / math.ceil(n / self.batch_size)))
