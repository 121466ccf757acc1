"""AdaptFormer config."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import AdapterConfig, check_range, hfield


@dataclass
class AdaptFormerConfig(AdapterConfig):
    """AdaptFormer (Chen et al., 2022): a bottleneck branch parallel to every block's MLP.

    `x + MLP(LN(x)) + scale · up(dropout(ReLU(down(x))))` with `up` zero-initialised, so the model equals
    the base at step 0.
    """

    method = "adaptformer"
    merge_unsupported = "the bottleneck branch is non-linear (ReLU), so it cannot fold into the MLP weights"

    bottleneck: int = hfield(
        64, "Width of the down-projection (the paper uses 64; 8 for the smallest budget)."
    )
    scale: float = hfield(0.1, "Fixed factor s on the adapter branch (0.1 in the paper).")
    dropout: float = hfield(0.1, "Dropout inside the branch, after the ReLU.")

    def validate(self) -> None:
        """Check ranges."""
        check_range("bottleneck", self.bottleneck, 1)
        check_range("dropout", self.dropout, 0.0, 1.0)
