"""Zero-shot CLIP's config: nothing to set."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import MethodConfig


@dataclass
class ZeroShotConfig(MethodConfig):
    """Zero-shot CLIP: `logits = logit_scale · cos(image, class text)`; no training, no support images needed."""

    method = "zero_shot"
