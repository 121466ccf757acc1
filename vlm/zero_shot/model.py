"""Zero-shot CLIP: the classifier is the (template-averaged) text features of the class names."""

from __future__ import annotations

import torch

from studio.core import register_method

from ..base import ClipContext, FewShotSpec, LinearHead, Support
from .config import ZeroShotConfig


def fit(ctx: ClipContext, support: Support | None, config: ZeroShotConfig) -> LinearHead:
    """The zero-shot classifier of `ctx` (the support set is not used).

    Args:
        ctx: base model and classes.
        support: ignored.
        config: the (empty) config.
    """
    return LinearHead(ctx.logit_scale * ctx.text_weights)


def restore(
    ctx: ClipContext, config: ZeroShotConfig, tensors: dict[str, torch.Tensor], hparams: dict
) -> LinearHead:
    """The zero-shot classifier of `ctx` again: a saved one holds exactly these weights, and on other class
    names it is their zero-shot classifier.

    Args:
        ctx: base model and classes.
        config: the (empty) config.
        tensors: the saved weights (not needed).
        hparams: none.
    """
    return fit(ctx, None, config)


register_method(
    ZeroShotConfig,
    domain="vlm",
    task="fewshot",
    train=fit,
    load=restore,
    spec=FewShotSpec(needs_support=False, class_agnostic=lambda config: True),
)
