"""LoRA config (a baseline for the vision methods)."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import AdapterConfig, check_range, hfield


@dataclass
class LoRAConfig(AdapterConfig):
    """LoRA (Hu et al., 2021): `W + (alpha / r) · B A` on chosen linear layers; B starts at zero.

    On timm's fused `qkv` projection, `qkv_parts` picks which of q, k, v get their own low-rank update
    (the paper's q and v by default: 0.29M parameters on ViT-B at r = 8).
    """

    method = "lora"
    merge_unsupported = ""

    r: int = hfield(8, "Rank of the update.")
    alpha: float = hfield(8.0, "Scale numerator: the update is multiplied by alpha / r.")
    dropout: float = hfield(0.0, "Dropout on the input of the low-rank branch.")
    target_modules: list[str] | str = hfield(
        ["qkv"], "Linear layers to adapt (names, dotted suffixes or a regex)."
    )
    qkv_parts: str = hfield("qv", "For a fused qkv projection: which of q, k, v are adapted.")

    def validate(self) -> None:
        """Check ranges."""
        check_range("r", self.r, 1)
        check_range("dropout", self.dropout, 0.0, 1.0)
        if not self.qkv_parts or set(self.qkv_parts) - set("qkv"):
            raise ValueError(f"qkv_parts must be letters from 'qkv', got {self.qkv_parts!r}")
