"""`DiffusionAdapterConfig`: the base of the configs of methods that inject layers into a diffusers pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import AdapterConfig


@dataclass
class DiffusionAdapterConfig(AdapterConfig):
    """An `AdapterConfig` for the UNet and text encoders of a diffusers pipeline.

    `frozen_eval` is not offered as an option: diffusers' UNets and the CLIP text encoders have no dropout or
    drop-path, so train and eval mode compute the same thing.
    """

    python_only = ("frozen_eval",)

    def check_concepts(self, count: int) -> None:
        """Refuse a run of `count` concepts that this method cannot train, before any work (every count is
        accepted unless a method says otherwise).

        Raises:
            ValueError: saying what the method needs.
        """
