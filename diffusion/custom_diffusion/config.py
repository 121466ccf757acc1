"""Custom Diffusion config."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import hfield
from studio.engine import check_number

from ..adapter_config import DiffusionAdapterConfig


@dataclass
class CustomDiffusionConfig(DiffusionAdapterConfig):
    """Custom Diffusion (Kumari et al., 2023): fine-tune only the cross-attention key and value projections
    (which map text into the UNet) plus a new modifier token `V*` for the concept.

    The projections start as copies of the base weights, so the pipeline starts equal to its base. Saved as
    diffusers' Custom Diffusion weights (`unet.load_attn_procs`) and the token's embedding in Textual
    Inversion's format (`pipe.load_textual_inversion`). Mergeable: the trained projections replace the base.
    """

    method = "custom_diffusion"
    merge_unsupported = ""

    train_q_out: bool = hfield(
        False, "Also fine-tune the cross-attention query and output projections (the authors' variant)."
    )
    lr: float | None = hfield(
        None,
        "Learning rate of the projections and the modifier token. None: 1e-5 × batch size × accumulation "
        "steps (the authors' scaled rate).",
    )

    def validate(self) -> None:
        """Reject a learning rate <= 0."""
        if self.lr is not None:
            check_number("lr", self.lr)
