"""Zero-shot CLIP: the classifier is the (template-averaged) text features of the class names."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import AdapterConfig

from .base import ClipContext, LinearHead, Support, restore_linear


@dataclass
class ZeroShotConfig(AdapterConfig):
    """Zero-shot CLIP: `logits = logit_scale · cos(image, class text)`; no training, no support images needed."""

    method = "zero_shot"


def fit(ctx: ClipContext, support: Support | None, config: ZeroShotConfig) -> LinearHead:
    """The zero-shot classifier of `ctx` (the support set is not used).

    Args:
        ctx: base model and classes.
        support: ignored.
        config: the (empty) config.
    """
    return LinearHead(ctx.logit_scale * ctx.text_weights)


restore = restore_linear
