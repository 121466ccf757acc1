"""Hyperparameter selection on a validation split carved from the support set (never on test data)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch


def split_support(
    labels: torch.Tensor, num_classes: int, seed: int = 0, fraction: float = 0.25
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Hold out `max(1, floor(fraction * k_c))` images of every class `c` (with `k_c` shots) for validation.

    Args:
        labels: class index of every support image.
        num_classes: number of classes.
        seed: seed of the choice.
        fraction: share of each class held out.

    Returns:
        `(train_index, val_index)`, or None when some class has fewer than 2 images (no split possible).
    """
    counts = torch.bincount(labels, minlength=num_classes)
    if len(labels) == 0 or int(counts.min()) < 2:
        return None
    generator = torch.Generator().manual_seed(seed)
    train, val = [], []
    for c in range(num_classes):
        index = torch.nonzero(labels == c).flatten()
        index = index[torch.randperm(len(index), generator=generator)]
        n_val = max(1, int(fraction * len(index)))
        val.append(index[:n_val])
        train.append(index[n_val:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def score(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """`(accuracy, -cross-entropy)`: compared as a tuple, the loss breaks ties between equal accuracies.

    Args:
        logits: `(n, C)`.
        labels: `(n,)`.
    """
    return best_of(logits[None], labels)[1]


def best_of(logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, tuple[float, float]]:
    """The best of G candidate classifiers scored at once (first best on ties), by `score`'s order.

    Args:
        logits: `(G, n, C)`, the validation logits of each candidate.
        labels: `(n,)`.

    Returns:
        `(index of the best candidate, its (accuracy, -cross-entropy))`.
    """
    labels = labels.to(logits.device)
    logits = logits.float()
    accuracy = (logits.argmax(-1) == labels).float().mean(-1)
    picked = logits.gather(-1, labels.expand(len(logits), -1)[..., None])[..., 0]
    loss = (logits.logsumexp(-1) - picked).mean(-1)  # cross-entropy of each candidate
    # lexicographic (accuracy, -loss): among the most accurate, the lowest loss; argmax takes the first
    masked = torch.where(accuracy == accuracy.max(), -loss, torch.tensor(-float("inf"), device=loss.device))
    index = int(masked.argmax())
    return index, (accuracy[index].item(), -loss[index].item())


def grid_search(
    evaluate: Callable[..., torch.Tensor], labels: torch.Tensor, grid: Mapping[str, Sequence[Any]]
) -> tuple[dict[str, Any], tuple[float, float]]:
    """The grid point whose validation logits score best (first best on ties).

    Args:
        evaluate: `(**point) -> validation logits`.
        labels: validation labels.
        grid: candidate values by argument name.

    Returns:
        `(best point, its score)`.
    """
    best, best_score = None, (-1.0, -float("inf"))
    names = list(grid)
    for values in itertools.product(*(grid[name] for name in names)):
        point = dict(zip(names, values, strict=True))
        current = score(evaluate(**point), labels)
        if current > best_score:
            best, best_score = point, current
    if best is None:
        raise ValueError("grid_search needs at least one value per hyperparameter")
    return best, best_score
