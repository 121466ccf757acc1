"""IP-Adapter's hyperparameters."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import check_range, hfield

from ..control.config import ControlConfig


@dataclass
class IPAdapterConfig(ControlConfig):
    """IP-Adapter hyperparameters.

    Args:
        lr: learning rate; the authors use 1e-4 with weight decay 1e-2.
        weight_decay: AdamW weight decay.
        scale: IP-Adapter scale used by `generate` unless given there.
        drop_text: probability of training a sample with the empty caption.
        drop_image: probability of training a sample with a zero image embedding (what sampling uses as the
            unconditional image input).
        drop_both: probability of dropping both (teaches the unconditional prediction for guidance).
    """

    method = "ip_adapter"
    merge_unsupported = "IP-Adapter attends to image tokens; it has nothing to fold into the UNet"

    lr: float = hfield(1e-4, "Learning rate (AdamW); the authors use 1e-4.")
    weight_decay: float = hfield(1e-2, "AdamW weight decay; the authors use 1e-2.")
    scale: float = hfield(1.0, "Default IP-Adapter scale at sampling (0 gives the base model).")
    drop_text: float = hfield(0.05, "Probability of training a sample with an empty caption (authors: 0.05).")
    drop_image: float = hfield(0.05, "Probability of training a sample without its image (authors: 0.05).")
    drop_both: float = hfield(0.05, "Probability of dropping caption and image together (authors: 0.05).")

    def validate(self) -> None:
        """Raise `ValueError` for probabilities outside [0, 1] or summing above 1."""
        super().validate()
        for name in ("drop_text", "drop_image", "drop_both"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        if self.drop_text + self.drop_image + self.drop_both > 1:
            raise ValueError("drop_text + drop_image + drop_both must be <= 1")
