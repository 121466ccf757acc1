"""Configuration of SVDiff: which layers get spectral shifts, and their scale."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import check_range, hfield
from studio.engine import check_number

from ..adapter_config import DiffusionAdapterConfig


@dataclass
class SVDiffConfig(DiffusionAdapterConfig):
    """SVDiff (Han et al., 2023): fine-tune the singular values of each weight, `W' = U·diag(ReLU(σ + δ))·Vᵀ`.

    The SVD of every targeted weight is computed once per base model and cached on disk; only the shifts `δ`
    (one per singular value) and, for norm layers, one shift per channel train.
    """

    method = "svdiff"
    merge_unsupported = ""

    targets: list[str] | str | None = hfield(
        None,
        "Modules to adapt: a regex on the full name or a list of name suffixes; None adapts every Linear and "
        "Conv2d (and, with include_norms, every GroupNorm/LayerNorm).",
    )
    exclude: list[str] | str | None = hfield(None, "Modules to leave alone, same syntax as targets.")
    include_norms: bool = hfield(
        True, "Also shift the weights of normalisation layers (trained with their own, small learning rate)."
    )
    scale: float = hfield(1.0, "Multiplier of the shifts at inference (1 = as trained; 0 = the base model).")
    lr: float = hfield(1e-3, "Learning rate of the singular-value shifts (the paper: 1e-3).")
    lr_norm: float = hfield(1e-6, "Learning rate of the norm-layer shifts (the paper: 1e-6).")
    train_text_encoder: bool = hfield(
        False, "Also shift the text encoder's weights (same targets rule: every Linear, plus norms)."
    )
    cut_mix_unmix: bool = hfield(
        False,
        "Cut-Mix-Unmix for two or more concepts in one run: also train on side-by-side collages of two "
        "concepts prompted 'a <A> on the left and a <B> on the right', and penalize each one's cross-attention "
        "in the other's half.",
    )
    cut_mix_probability: float = hfield(
        0.5, "With cut_mix_unmix: chance that a training sample is a two-concept collage."
    )
    unmix_weight: float = hfield(
        1.0, "With cut_mix_unmix: weight of the Unmix attention penalty in the loss (0: Cut-Mix alone)."
    )

    def check_concepts(self, count: int) -> None:
        """Refuse Cut-Mix-Unmix for a run of fewer than two concepts."""
        super().check_concepts(count)
        if self.cut_mix_unmix and count < 2:
            raise ValueError(
                "cut_mix_unmix needs two or more concepts; add them with concepts=[Concept(token, images, "
                "class_word)] (CLI: --concept TOKEN CLASS_WORD IMAGES; studio: the more-concepts rows), or turn "
                "cut_mix_unmix off"
            )

    def validate(self) -> None:
        """Reject a negative scale, a learning rate <= 0, a collage probability outside [0, 1] and a negative
        Unmix weight."""
        check_range("scale", self.scale, 0.0)
        check_range("cut_mix_probability", self.cut_mix_probability, 0.0, 1.0)
        check_number("unmix_weight", self.unmix_weight, allow_zero=True)
        check_number("lr", self.lr)
        check_number("lr_norm", self.lr_norm)
