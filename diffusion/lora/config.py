"""LoRA / DreamBooth-LoRA config for Stable-Diffusion pipelines."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import check_range, hfield
from studio.engine import check_number

from ..adapter_config import DiffusionAdapterConfig

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


@dataclass
class DiffusionLoRAConfig(DiffusionAdapterConfig):
    """LoRA (Hu et al., 2021) on the UNet's attention projections, and optionally the text encoder's, as
    diffusers' DreamBooth-LoRA trainer places it: `W + (alpha / r) · B A` with B starting at zero, so the
    pipeline starts equal to its base. Mergeable.
    """

    method = "lora"
    merge_unsupported = ""

    r: int = hfield(4, "Rank of each update (diffusers' DreamBooth-LoRA default: 4; 4-128 are common).")
    alpha: float = hfield(
        4.0, "Scale numerator: the update is multiplied by alpha / r (diffusers uses alpha = r)."
    )
    dropout: float = hfield(0.0, "Dropout on the input of the low-rank branch.")
    target_modules: list[str] | str = hfield(
        list(UNET_TARGETS), "UNet linear layers to adapt (names, dotted suffixes or a regex)."
    )
    train_text_encoder: bool = hfield(False, "Also adapt the text encoder's attention projections.")
    text_target_modules: list[str] | str = hfield(
        list(TEXT_TARGETS), "Text-encoder linear layers to adapt when train_text_encoder is on."
    )

    lr: float = hfield(1e-4, "Learning rate (AdamW; diffusers' DreamBooth-LoRA example: 1e-4).")

    def validate(self) -> None:
        """Check ranges."""
        check_range("r", self.r, 1)
        check_number("lr", self.lr)
        check_range("alpha", self.alpha, 0.0)
        check_range("dropout", self.dropout, 0.0, 1.0)
