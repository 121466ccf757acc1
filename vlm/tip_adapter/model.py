"""Tip-Adapter (training-free cache model) and Tip-Adapter-F (cache keys fine-tuned).

`logits = s·f·W_textᵀ + α·exp(−β(1 − f·keysᵀ))·values`, with `s` the model's own logit scale (the paper's
100 is OpenAI CLIP's logit scale), keys the L2-normalised support features (or their mean over augmented
views) and values their one-hot labels.

The paper's search ranges (α ≤ ~10, β ≤ ~12, set per dataset) assume OpenAI CLIP's feature geometry. A model
whose zero-shot logits carry little information (new class words) needs α ≫ 1, and one whose image features
are tightly clustered (cos ≈ 0.9 between any two images) needs β ≫ 10 to tell keys apart, so the default grids
are log-spaced over a wide range; searching them is one batched tensor operation per α.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studio.core import register_method

from ..base import ClipContext, FewShotSpec, Head, Support, cosine_lr, step_threads, train_epochs
from ..selection import best_of, split_support
from .config import TipAdapterConfig, TipAdapterFConfig


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

    def cache_logits(self, features: torch.Tensor, beta: float | list[float] | None = None) -> torch.Tensor:
        """`exp(−β(1 − f·keysᵀ))·values` (without α): `(n, C)`, or `(B, n, C)` for a list of B betas."""
        beta = self.beta if beta is None else beta
        betas = torch.tensor(beta, dtype=features.dtype, device=features.device)
        affinity = (features @ self.keys.T).expand(*betas.shape, -1, -1)
        return torch.exp(-betas[..., None, None] * (1.0 - affinity)) @ self.values

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
        best, point = (-1.0, -float("inf")), {}
        with torch.no_grad():
            zero_shot = self.logit_scale * features @ self.text_weights.T
            cache = self.cache_logits(features, list(config.beta_grid))  # (B, n, C), once for every alpha
            for alpha in config.alpha_grid:
                index, current = best_of(zero_shot + alpha * cache, labels)
                if current > best:
                    best, point = current, {"alpha": alpha, "beta": config.beta_grid[index]}
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
    """Tip-Adapter-F: choose alpha and beta as Tip-Adapter does and train keys with them on a split, choosing
    the best epoch (and alpha and beta after it) on its validation part; then retrain on the whole support
    set for that many epochs and keep the chosen alpha and beta.

    Args:
        ctx: base model and classes.
        support: support features and augmented views.
        config: the method's config.
    """
    split = split_support(support.labels, ctx.num_classes, ctx.seed) if config.search else None
    # one schedule (length of the cosine decay) for the split run and the refit, so the chosen epoch means
    # the same in both
    total = config.epochs_for(len(support.labels) if split is None else len(split[0]))
    epochs, alpha, beta = total, config.alpha, config.beta
    train_alpha, train_beta = alpha, beta
    if split is not None:
        train, val = split
        head = _head(ctx, support.subset(train), config, trainable=True)
        val_support = support.subset(val)
        score = head.select(val_support, config)
        # Train with the training-free choice: the paper's fixed init values can leave the cache term
        # negligible next to the zero-shot logits, and then the keys get almost no gradient
        train_alpha, train_beta = head.alpha, head.beta
        best = {"score": score, "epoch": 0, "alpha": train_alpha, "beta": train_beta}

        def after_epoch(epoch: int) -> None:
            current = head.select(val_support, config)
            if current > best["score"]:
                best.update(score=current, epoch=epoch, alpha=head.alpha, beta=head.beta)
            head.alpha, head.beta = train_alpha, train_beta

        _train_keys(ctx, support.subset(train), head, config, total, after_epoch=after_epoch)
        epochs, alpha, beta = best["epoch"], best["alpha"], best["beta"]
    head = _head(ctx, support, config, trainable=True)
    head.alpha, head.beta = train_alpha, train_beta
    _train_keys(ctx, support, head, config, total, stop_after=epochs)
    head.alpha, head.beta = alpha, beta
    head.hparams = {
        "alpha": alpha,
        "beta": beta,
        "train_alpha": train_alpha,
        "train_beta": train_beta,
        "epochs": epochs,
        "selected_on_validation": split is not None,
    }
    return head


def _train_keys(
    ctx,
    support: Support,
    head: TipAdapterHead,
    config: TipAdapterFConfig,
    total: int,
    after_epoch=None,
    stop_after=None,
):
    if stop_after == 0:
        return
    views, labels = support.epoch_views().to(ctx.device), support.labels.to(ctx.device)

    def batch_loss(index: torch.Tensor, epoch: int) -> torch.Tensor:
        return F.cross_entropy(head(views[epoch % len(views)][index]), labels[index])

    optimizer = torch.optim.AdamW([head.keys], lr=config.lr, eps=1e-4, weight_decay=config.weight_decay)
    train_epochs(
        [head.keys],
        batch_loss,
        len(labels),
        optimizer=optimizer,
        lr_at=cosine_lr(config.lr, total),
        epochs=total if stop_after is None else stop_after,
        batch_size=config.batch_size,
        seed=ctx.seed,
        after_epoch=after_epoch,
        # forward + backward of the affinities and the cache logits, per step
        threads=step_threads(6.0 * min(len(labels), config.batch_size) * head.keys.numel(), ctx.device),
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


def _views(config: TipAdapterConfig) -> int:
    return config.augment_views


SPEC = FewShotSpec(augmented_views=_views)
register_method(TipAdapterConfig, domain="vlm", task="fewshot", train=fit, load=restore, spec=SPEC)
register_method(TipAdapterFConfig, domain="vlm", task="fewshot", train=fit_f, load=restore, spec=SPEC)
