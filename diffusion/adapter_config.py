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
