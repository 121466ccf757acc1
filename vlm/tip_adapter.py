"""Tip-Adapter (training-free cache model) and Tip-Adapter-F (cache keys fine-tuned).

`logits = s·f·W_textᵀ + α·exp(−β(1 − f·keysᵀ))·values`, with `s` the model's logit scale, keys the
L2-normalised mean over augmented views of the support features and values their one-hot labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from studio.core import AdapterConfig, check_range, hfield

from .base import ClipContext, Head, Support, cosine_lr, train_epochs
from .selection import grid_search, split_support


@dataclass
class TipAdapterConfig(AdapterConfig):
    """Tip-Adapter: a key–value cache of the support features added to the zero-shot logits; no training."""

    method = "tip_adapter"

    augment_views: int = hfield(
        10, "Augmented views (random resized crop + flip) averaged into each cache key; 0: the plain image."
    )
    alpha: float = hfield(1.0, "Weight of the cache logits; used when no validation split is possible.")
    beta: float = hfield(5.5, "Sharpness of the key affinities; used when no validation split is possible.")
    search: bool = hfield(
        True, "Grid-search alpha and beta on a validation split carved from the support set."
    )
    alpha_grid: list[float] = hfield(
        [0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0], "Values of alpha tried on the validation split."
    )
    beta_grid: list[float] = hfield([0.5, 1.0, 2.0, 3.5, 5.5, 7.5, 10.0], "Values of beta tried.")

    def validate(self) -> None:
        """Check ranges."""
        check_range("augment_views", self.augment_views, 0)
        check_range("alpha", self.alpha, 0.0)
        check_range("beta", self.beta, 0.0)
        for name in ("alpha_grid", "beta_grid"):
            values = getattr(self, name)
            if not values or min(values) < 0:
                raise ValueError(f"{name} must be a non-empty list of values >= 0, got {values!r}")


@dataclass
class TipAdapterFConfig(TipAdapterConfig):
    """Tip-Adapter-F: the cache keys become trainable (AdamW on cached augmented-view features); the best
    epoch, alpha and beta are chosen on a validation split, then the keys are refit on the whole support set."""

    method = "tip_adapter_f"

    lr: float = hfield(1e-3, "AdamW learning rate of the cache keys (cosine schedule).")
    epochs: int = hfield(20, "Training epochs; each epoch sees one cached augmented view of every image.")
    batch_size: int = hfield(256, "Images per step.")
    weight_decay: float = hfield(0.01, "AdamW weight decay.")

    def validate(self) -> None:
        """Check ranges."""
        super().validate()
        check_range("lr", self.lr, 0.0)
        check_range("epochs", self.epochs, 1)
        check_range("batch_size", self.batch_size, 1)
        check_range("weight_decay", self.weight_decay, 0.0)


class TipAdapterHead(Head):
    """Zero-shot logits plus the cache logits.

    Args:
        text_weights: zero-shot classifier `(C, d)`.
        keys: cache keys `(N, d)`.
        values: one-hot cache values `(N, C)`.
        logit_scale: scale of the zero-shot logits.
        alpha: weight of the cache logits.
        beta: sharpness of the affinities.
        trainable_keys: make the keys an `nn.Parameter` (Tip-Adapter-F).
    """

    def __init__(
        self,
        text_weights: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        logit_scale: float,
        alpha: float,
        beta: float,
        trainable_keys: bool = False,
    ) -> None:
        super().__init__()
        self.register_buffer("text_weights", text_weights.detach().float().clone(), persistent=False)
        self.register_buffer("values", values.detach().float().clone())
        keys = keys.detach().float().clone()
        if trainable_keys:
            self.keys = nn.Parameter(keys, requires_grad=False)  # switched on only while training
        else:
            self.register_buffer("keys", keys)
        self.logit_scale, self.alpha, self.beta = logit_scale, alpha, beta
        self.hparams = {"alpha": alpha, "beta": beta}

    def cache_logits(self, features: torch.Tensor, beta: float | None = None) -> torch.Tensor:
        """`exp(−β(1 − f·keysᵀ))·values` (without α)."""
        beta = self.beta if beta is None else beta
        return torch.exp(-beta * (1.0 - features @ self.keys.T)) @ self.values

    def forward(
        self, features: torch.Tensor, alpha: float | None = None, beta: float | None = None
    ) -> torch.Tensor:
        """Logits `(n, C)`; `alpha`/`beta` override the head's own values (for the grid search)."""
        alpha = self.alpha if alpha is None else alpha
        zero_shot = self.logit_scale * features @ self.text_weights.T
        return zero_shot + alpha * self.cache_logits(features, beta)

    def select(self, val: Support, config: TipAdapterConfig) -> tuple[float, float]:
        """Grid-search alpha and beta on `val`; set them on the head and return the score."""
        features, labels = val.features.to(self.values.device), val.labels
        with torch.no_grad():
            zero_shot = self.logit_scale * features @ self.text_weights.T
            cache = {beta: self.cache_logits(features, beta) for beta in config.beta_grid}
            point, best = grid_search(
                lambda alpha, beta: zero_shot + alpha * cache[beta],
                labels,
                {"alpha": config.alpha_grid, "beta": config.beta_grid},
            )
        self.alpha, self.beta = point["alpha"], point["beta"]
        self.hparams.update(point)
        return best


def cache_keys(support: Support) -> torch.Tensor:
    """Keys: the L2-normalised mean over augmented views (or the plain features when there are none)."""
    if support.views is None or len(support.views) == 0:
        return support.features
    return F.normalize(support.views.mean(0), dim=-1)


def _head(ctx: ClipContext, support: Support, config: TipAdapterConfig, trainable: bool) -> TipAdapterHead:
    values = F.one_hot(support.labels, ctx.num_classes).float()
    keys = cache_keys(support).to(ctx.device)
    return TipAdapterHead(
        ctx.text_weights, keys, values.to(ctx.device), ctx.logit_scale, config.alpha, config.beta, trainable
    )


def fit(ctx: ClipContext, support: Support, config: TipAdapterConfig) -> TipAdapterHead:
    """Tip-Adapter: alpha and beta searched on a split (cache of the train part), then the cache of the
    whole support set.

    Args:
        ctx: base model and classes.
        support: support features (and augmented views, when `augment_views > 0`).
        config: the method's config.
    """
    split = split_support(support.labels, ctx.num_classes, ctx.seed) if config.search else None
    head = _head(ctx, support, config, trainable=False)
    if split is not None:
        train, val = split
        point = _head(ctx, support.subset(train), config, trainable=False)
        point.select(support.subset(val), config)
        head.alpha, head.beta, head.hparams = point.alpha, point.beta, dict(point.hparams)
    head.hparams["selected_on_validation"] = split is not None
    return head


def fit_f(ctx: ClipContext, support: Support, config: TipAdapterFConfig) -> TipAdapterHead:
    """Tip-Adapter-F: train keys on a split, choosing the best epoch, alpha and beta on its validation part;
    then retrain on the whole support set for that many epochs and keep the chosen alpha and beta.

    Args:
        ctx: base model and classes.
        support: support features and augmented views.
        config: the method's config.
    """
    split = split_support(support.labels, ctx.num_classes, ctx.seed) if config.search else None
    epochs, alpha, beta = config.epochs, config.alpha, config.beta
    if split is not None:
        train, val = split
        head = _head(ctx, support.subset(train), config, trainable=True)
        best = {
            "score": head.select(support.subset(val), config),
            "epoch": 0,
            "alpha": head.alpha,
            "beta": head.beta,
        }

        def after_epoch(epoch: int) -> None:
            current = head.select(support.subset(val), config)
            if current > best["score"]:
                best.update(score=current, epoch=epoch, alpha=head.alpha, beta=head.beta)
            head.alpha, head.beta = config.alpha, config.beta  # train with the configured values

        head.alpha, head.beta = config.alpha, config.beta
        _train_keys(ctx, support.subset(train), head, config, after_epoch)
        epochs, alpha, beta = best["epoch"], best["alpha"], best["beta"]
    head = _head(ctx, support, config, trainable=True)
    _train_keys(ctx, support, head, config, stop_after=epochs)
    head.alpha, head.beta = alpha, beta
    head.hparams = {
        "alpha": alpha,
        "beta": beta,
        "epochs": epochs,
        "selected_on_validation": split is not None,
    }
    return head


def _train_keys(
    ctx, support: Support, head: TipAdapterHead, config: TipAdapterFConfig, after_epoch=None, stop_after=None
):
    if stop_after == 0:
        return
    views = support.views if support.views is not None and len(support.views) else support.features[None]
    views, labels = views.to(ctx.device), support.labels.to(ctx.device)

    def batch_loss(index: torch.Tensor, epoch: int) -> torch.Tensor:
        return F.cross_entropy(head(views[epoch % len(views)][index]), labels[index])

    optimizer = torch.optim.AdamW([head.keys], lr=config.lr, eps=1e-4, weight_decay=config.weight_decay)
    train_epochs(
        [head.keys],
        batch_loss,
        len(labels),
        optimizer=optimizer,
        lr_at=cosine_lr(config.lr, config.epochs),
        epochs=config.epochs if stop_after is None else stop_after,
        batch_size=config.batch_size,
        seed=ctx.seed,
        after_epoch=after_epoch,
    )
    head.keys.requires_grad_(False)


def restore(
    ctx: ClipContext, config: TipAdapterConfig, tensors: dict[str, torch.Tensor], hparams: dict
) -> TipAdapterHead:
    """Rebuild a saved Tip-Adapter(-F) head.

    Args:
        ctx: base model and classes.
        config: the saved config.
        tensors: `keys`, `values`.
        hparams: the chosen `alpha`, `beta` (and `epochs`).
    """
    head = TipAdapterHead(
        ctx.text_weights,
        tensors["keys"],
        tensors["values"],
        ctx.logit_scale,
        hparams["alpha"],
        hparams["beta"],
    )
    head.hparams = dict(hparams)
    return head
