"""DiffFit config."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import hfield
from studio.engine import check_number

from ..adapter_config import DiffusionAdapterConfig

SCALE_TARGETS = ["attn1.to_out.0", "attn2.to_out.0", "ff.net.2"]


@dataclass
class DiffFitConfig(DiffusionAdapterConfig):
    """DiffFit (Xie et al., 2023): train the bias terms, the norm layers and new scale factors γ (init 1.0)
    on each transformer block's attention and feed-forward outputs, about 0.1% of the parameters.

    Published on DiT; on a UNet the analogous places are each transformer block's self-attention,
    cross-attention and feed-forward output projections. Biases and norms are trained as shifts of the frozen
    values (δ, init 0), so the pipeline starts equal to its base and the artifact holds only what changed.
    Mergeable: γ and the shifts fold into the weights.
    """

    method = "difffit"
    merge_unsupported = ""

    scale_targets: list[str] | str = hfield(
        list(SCALE_TARGETS),
        "Layers whose output gets a learned scale γ (names, dotted suffixes or a regex): by default every "
        "transformer block's attention and feed-forward output projection.",
    )
    train_biases: bool = hfield(True, "Train a shift of every Linear and Conv2d bias of the UNet.")
    train_norms: bool = hfield(True, "Train shifts of the UNet's GroupNorm/LayerNorm weights and biases.")
    lr: float = hfield(1e-3, "Learning rate (AdamW); few parameters take a large rate, as for SVDiff.")

    def validate(self) -> None:
        """Reject a learning rate <= 0."""
        check_number("lr", self.lr)
