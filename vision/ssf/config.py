"""SSF config."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import AdapterConfig, check_range, hfield


@dataclass
class SSFConfig(AdapterConfig):
    """Scaling & Shifting Features (Lian et al., 2022): `y = γ ⊙ x + β` after every linear, norm and conv.

    Mergeable: the scale and shift fold into the preceding layer's weight and bias.
    """

    method = "ssf"
    merge_unsupported = ""

    target_modules: list[str] | str | None = hfield(
        None,
        "Modules followed by a scale-shift (names, dotted suffixes or a regex). None: every Linear, LayerNorm "
        "and Conv2d outside the head, which is qkv, attn.proj, fc1, fc2, norm1, norm2, the final norm and "
        "the patch projection in a ViT.",
    )
    exclude_modules: list[str] | str | None = hfield(None, "Modules to leave without a scale-shift.")
    init_std: float = hfield(
        0.0,
        "Std of the random init around γ=1, β=0. 0 makes the model equal the base at step 0; the authors use 0.02.",
    )

    def validate(self) -> None:
        """Check ranges."""
        check_range("init_std", self.init_std, 0.0)
