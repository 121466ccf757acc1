"""Linear probe: multinomial logistic regression on frozen, L2-normalised image features."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from studio.core import register_method

from ..base import ClipContext, FewShotSpec, LinearHead, Support, restore_linear
from ..selection import grid_search, split_support
from .config import ClipLinearProbeConfig


def logistic_regression(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, l2: float, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit `softmax(features @ W.T + b)` by full-batch L-BFGS from zero weights (deterministic).

    Args:
        features: `(n, d)`.
        labels: `(n,)` class indices.
        num_classes: C.
        l2: penalty `l2 / 2 · ||W||²` added to the mean cross-entropy.
        max_iter: L-BFGS iterations.

    Returns:
        `(W (C, d), b (C,))`.
    """
    weight = torch.zeros(num_classes, features.shape[1], device=features.device, requires_grad=True)
    bias = torch.zeros(num_classes, device=features.device, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(F.linear(features, weight, bias), labels) + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach(), bias.detach()


def fit(ctx: ClipContext, support: Support, config: ClipLinearProbeConfig) -> LinearHead:
    """Choose the L2 strength on a validation split, then refit on the whole support set.

    Args:
        ctx: base model and classes.
        support: support features and labels.
        config: the method's config.
    """
    features, labels = support.features.to(ctx.device), support.labels.to(ctx.device)
    split = split_support(support.labels, ctx.num_classes, ctx.seed)
    l2 = config.l2
    if split is not None and len(config.l2_grid) > 1:
        train, val = split

        def evaluate(l2: float) -> torch.Tensor:
            weight, bias = logistic_regression(
                features[train], labels[train], ctx.num_classes, l2, config.max_iter
            )
            return F.linear(features[val], weight, bias)

        l2 = grid_search(evaluate, labels[val], {"l2": config.l2_grid})[0]["l2"]
    head = LinearHead(*logistic_regression(features, labels, ctx.num_classes, l2, config.max_iter))
    head.hparams = {"l2": l2, "selected_on_validation": split is not None}
    return head


register_method(
    ClipLinearProbeConfig,
    domain="vlm",
    task="fewshot",
    train=fit,
    load=restore_linear,
    spec=FewShotSpec(),
)
