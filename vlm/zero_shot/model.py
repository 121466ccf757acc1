"""Zero-shot CLIP: the classifier is the (template-averaged) text features of the class names."""

from __future__ import annotations

from studio.core import register_method

from ..base import ClipContext, FewShotSpec, LinearHead, Support, restore_linear
from .config import ZeroShotConfig


def fit(ctx: ClipContext, support: Support | None, config: ZeroShotConfig) -> LinearHead:
    """The zero-shot classifier of `ctx` (the support set is not used).

    Args:
        ctx: base model and classes.
        support: ignored.
        config: the (empty) config.
    """
    return LinearHead(ctx.logit_scale * ctx.text_weights)


register_method(
    ZeroShotConfig,
    domain="vlm",
    task="fewshot",
    train=fit,
    load=restore_linear,
    spec=FewShotSpec(needs_support=False),
)
