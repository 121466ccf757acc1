"""T2I-Adapter's hyperparameters."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import hfield

from ..control.config import ControlConfig

ADAPTER_TYPES = ("auto", "full_adapter", "light_adapter", "full_adapter_xl")


@dataclass
class T2IAdapterConfig(ControlConfig):
    """T2I-Adapter hyperparameters.

    Args:
        lr: learning rate; the authors use 1e-5.
        scale: `adapter_conditioning_scale` used by `generate` unless given there.
        adapter_type: `"full_adapter"` (≈77M on SD 1.5), `"light_adapter"`, `"full_adapter_xl"`, or
            `"auto"`: the first layout, in that order of preference (full, XL, light), whose features fit the UNet.
        num_res_blocks: residual blocks per scale; None: 2 for the full layouts, 4 for the light one.
        early_timesteps: draw training timesteps as `T·(1 - u³)` (`diffusion.denoise.cubic_timesteps`), which
            favours the noisy early sampling steps where the layout is decided, as the authors do; False: uniform.
    """

    method = "t2i_adapter"
    merge_unsupported = "a T2I-Adapter is a separate network; it is never folded into the UNet"

    lr: float = hfield(1e-5, "Learning rate (AdamW); the authors use 1e-5.")
    scale: float = hfield(1.0, "Default adapter_conditioning_scale at sampling (0 switches it off).")
    adapter_type: str = hfield(
        "auto",
        "full_adapter (≈77M on SD 1.5), light_adapter, full_adapter_xl, or auto (the first that fits the UNet).",
        choices=ADAPTER_TYPES,
    )
    num_res_blocks: int | None = hfield(None, "Residual blocks per scale; None: 2 (full) or 4 (light).")
    early_timesteps: bool = hfield(
        True, "Draw training timesteps as T·(1-u³), favouring early, noisy steps (the authors' schedule)."
    )

    def validate(self) -> None:
        """Raise `ValueError` for an unknown layout or a non-positive block count."""
        super().validate()
        if self.adapter_type not in ADAPTER_TYPES:
            raise ValueError(f"adapter_type must be one of {ADAPTER_TYPES}, got {self.adapter_type!r}")
        if self.num_res_blocks is not None and self.num_res_blocks < 1:
            raise ValueError(f"num_res_blocks must be >= 1, got {self.num_res_blocks}")
