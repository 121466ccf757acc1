"""CLIP-Adapter: a residual bottleneck MLP on the image feature, trained on cached features (the image tower
never runs during training) under the frozen zero-shot text classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studio.core import register_method

from ..base import ClipContext, FewShotSpec, Head, Support, cosine_lr, step_threads, train_epochs
from ..selection import best_of, split_support
from .config import ClipAdapterConfig


class ClipAdapterHead(Head):
    """`logits = s · normalize(α·A(f) + (1 − α)·f) · W_textᵀ`, with `A` = Linear → ReLU → Linear → ReLU.

    Args:
        ctx: base model and classes (its text classifier is used, not owned).
        reduction: hidden width = feature width / reduction.
        ratio: the residual ratio α.
    """

    def __init__(self, ctx: ClipContext, reduction: int, ratio: float) -> None:
        super().__init__()
        dim = ctx.text_weights.shape[1]
        hidden = max(1, dim // reduction)
        with torch.random.fork_rng(devices=[]):  # a seeded initialisation that leaves the global RNG alone
            torch.manual_seed(ctx.seed)
            self.adapter = nn.Sequential(
                nn.Linear(dim, hidden, bias=False),
                nn.ReLU(),
                nn.Linear(hidden, dim, bias=False),
                nn.ReLU(),
            ).to(ctx.device)
        self.adapter.requires_grad_(False)  # switched on only while training
        self.register_buffer("text_weights", ctx.text_weights.detach().float().clone(), persistent=False)
        self.logit_scale, self.ratio = ctx.logit_scale, ratio
        self.hparams = {"ratio": ratio}

    def forward(self, features: torch.Tensor, ratio: float | None = None) -> torch.Tensor:
        """Logits `(n, C)` of image features `(n, d)`; `ratio` overrides the head's own (for the search)."""
        ratio = self.ratio if ratio is None else ratio
        mixed = F.normalize(ratio * self.adapter(features) + (1.0 - ratio) * features, dim=-1)
        return self.logit_scale * mixed @ self.text_weights.T


def _train(
    ctx: ClipContext, support: Support, config: ClipAdapterConfig, ratio: float, epochs: int
) -> ClipAdapterHead:
    head = ClipAdapterHead(ctx, config.reduction, ratio)
    views, labels = support.epoch_views().to(ctx.device), support.labels.to(ctx.device)
    params = list(head.adapter.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    losses = train_epochs(
        params,
        lambda index, epoch: F.cross_entropy(head(views[epoch % len(views)][index]), labels[index]),
        len(labels),
        optimizer=optimizer,
        lr_at=cosine_lr(config.lr, epochs),
        epochs=epochs,
        batch_size=config.batch_size,
        seed=ctx.seed,
        # forward + backward of the two layers, per step
        threads=step_threads(
            6.0 * min(len(labels), config.batch_size) * sum(p.numel() for p in params), ctx.device
        ),
    )
    head.adapter.requires_grad_(False)
    head.hparams["final_loss"] = losses[-1]
    return head


def fit(ctx: ClipContext, support: Support, config: ClipAdapterConfig) -> ClipAdapterHead:
    """Choose the ratio on a validation split (one adapter trained per ratio on the rest), then train the
    adapter on the whole support set with it.

    Args:
        ctx: base model and classes.
        support: support features (and augmented views, when `augment_views > 0`).
        config: the method's config.
    """
    split = split_support(support.labels, ctx.num_classes, ctx.seed) if config.search else None
    ratio = config.ratio
    if split is not None and len(config.ratio_grid) > 1:
        train, val = split
        part, held = support.subset(train), support.subset(val)
        epochs = config.epochs_for(len(train))
        heads = [_train(ctx, part, config, r, epochs) for r in config.ratio_grid]
        with torch.no_grad():
            logits = torch.stack([head(held.features.to(ctx.device)) for head in heads])
        ratio = config.ratio_grid[best_of(logits, held.labels)[0]]
    epochs = config.epochs_for(len(support.labels))
    head = _train(ctx, support, config, ratio, epochs)
    head.hparams.update(epochs=epochs, selected_on_validation=split is not None)
    return head


def restore(
    ctx: ClipContext, config: ClipAdapterConfig, tensors: dict[str, torch.Tensor], hparams: dict
) -> ClipAdapterHead:
    """Rebuild a saved CLIP-Adapter head on `ctx`'s classes (any classes: the adapter is class-agnostic).

    Args:
        ctx: base model and classes.
        config: the saved config.
        tensors: the adapter's weights.
        hparams: the chosen `ratio`.
    """
    head = ClipAdapterHead(ctx, config.reduction, hparams["ratio"])
    head.load_state_dict(tensors)
    head.hparams = dict(hparams)
    return head


def _views(config: ClipAdapterConfig) -> int:
    return config.augment_views


register_method(
    ClipAdapterConfig,
    domain="vlm",
    task="fewshot",
    train=fit,
    load=restore,
    spec=FewShotSpec(augmented_views=_views, class_agnostic=lambda config: True),
)
