"""`DiffusionAdapterConfig`: the base of the configs of methods that inject layers into a diffusers pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from studio.core import AdapterConfig


@dataclass
class DiffusionAdapterConfig(AdapterConfig):
    """An `AdapterConfig` for the UNet and text encoders of a diffusers pipeline.

    `frozen_eval` is not offered as an option: diffusers' UNets and the CLIP text encoders have no dropout or
    drop-path, so train and eval mode compute the same thing.

    Class attributes:
        one_concept_per_run: the method learns one concept per run (else any number, trained jointly).
    """

    python_only = ("frozen_eval",)
    one_concept_per_run: ClassVar[bool] = False

    def check_concepts(self, count: int) -> None:
        """Refuse a run of `count` concepts that this method cannot train (more than one, for a method that
        learns one per run, or what a method's override says), before any work.

        Raises:
            ValueError: saying what the method needs.
        """
        if self.one_concept_per_run and count > 1:
            raise ValueError(one_concept_refusal(self.method, count))


def one_concept_refusal(method: str, count: int) -> str:
    """The refusal of a run of `count` concepts by a method that learns one per run."""
    return f"{method} learns one concept per run, got {count}; train each on its own"
