"""What every control method's config shares: the learning rate and the control strength at sampling."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import MethodConfig, check_range, hfield


@dataclass
class ControlConfig(MethodConfig):
    """Base of `ControlNetConfig`, `T2IAdapterConfig` and `IPAdapterConfig`.

    Args:
        lr: learning rate (AdamW); subclasses default to their authors' value.
        weight_decay: AdamW weight decay.
        scale: how strongly the control steers sampling; recorded in the artifact as `generate`'s default.
    """

    lr: float = hfield(1e-5, "Learning rate (AdamW).")
    weight_decay: float = hfield(0.0, "AdamW weight decay.")
    scale: float = hfield(1.0, "Strength of the control at sampling (0 switches it off).")

    def validate(self) -> None:
        """Raise `ValueError` for a non-positive learning rate or a negative decay or scale."""
        super().validate()
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        check_range("weight_decay", self.weight_decay, 0.0)
        check_range("scale", self.scale, 0.0)
