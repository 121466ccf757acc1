"""What every control method's config shares: the learning rate and the control strength at sampling."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import AdapterConfig, check_range, hfield


@dataclass
class ControlConfig(AdapterConfig):
    """Base of `ControlNetConfig`, `T2IAdapterConfig` and `IPAdapterConfig`.

    Args:
        lr: learning rate (AdamW); subclasses default to their authors' value.
        weight_decay: AdamW weight decay.
        scale: how strongly the control steers sampling; recorded in the artifact as `generate`'s default.
    """

    lr: float = hfield(1e-5, "Learning rate (AdamW).")
    weight_decay: float = hfield(0.0, "AdamW weight decay.")
    scale: float = hfield(1.0, "Strength of the control at sampling (0 switches it off).")

    @classmethod
    def option_help(cls) -> dict[str, str]:
        """Help text of the method's own options (without `AdapterConfig`'s fields, which control methods
        do not use: they train a separate module, never injected layers or a head)."""
        shared = AdapterConfig.help()
        return {name: text for name, text in cls.help().items() if name not in shared}

    def validate(self) -> None:
        """Raise `ValueError` for a non-positive learning rate or a negative decay or scale."""
        super().validate()
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        check_range("weight_decay", self.weight_decay, 0.0)
        check_range("scale", self.scale, 0.0)
