"""Visual Prompt Tuning config."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import AdapterConfig, check_range, hfield


@dataclass
class VPTConfig(AdapterConfig):
    """Visual Prompt Tuning (Jia et al., 2022): learnable tokens inserted after the class token.

    Shallow VPT prompts the first block only; deep VPT replaces the prompt slots before every block
    with that block's own prompts (depth · num_tokens · dim parameters). On Swin, deep VPT only: every
    block's windowed attention attends to its own prompts (`vision.vpt.swin` lists the deviations from the
    authors' Swin variant).
    """

    method = "vpt"
    merge_unsupported = "VPT adds tokens to the sequence; there is no weight they can fold into"

    num_tokens: int = hfield(10, "Prompt tokens per layer (the paper searches 1–200; 50 is common for VTAB).")
    deep: bool = hfield(True, "Fresh prompts before every block (VPT-deep) instead of the first block only.")
    dropout: float = hfield(0.0, "Dropout on the prompt tokens during training.")
    frozen_eval: bool = hfield(
        True, "Run the frozen backbone in eval mode (no dropout/drop-path), as the authors do."
    )

    def validate(self) -> None:
        """Check ranges."""
        check_range("num_tokens", self.num_tokens, 1)
        check_range("dropout", self.dropout, 0.0, 1.0)
