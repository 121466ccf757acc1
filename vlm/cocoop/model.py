"""CoCoOp: every image gets its own prompt context, `v_m + π(f)`, from a meta-net on its (cached) feature.

The image tower never runs during training; the text tower runs once per image per class, which is CoCoOp's
cost over CoOp (one text pass per class per step)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studio.core import register_method

from ..base import ClipContext, FewShotSpec, Support, cosine_lr, frozen, step_threads, train_epochs
from ..coop.model import CoOpHead
from ..text import encode_text_embeddings
from .config import CoCoOpConfig

# prompts encoded per chunk at inference: bounds the memory of (images × classes) prompts
PROMPTS_PER_CHUNK = 2048


class CoCoOpHead(CoOpHead):
    """CoOp's prompts `[SOS] ctx… name . [EOT]` with the context shifted per image by `meta_net(feature)`.

    Args:
        ctx: the base model and classes (the model is referenced, not owned).
        config: the method's config.
        init: initial context `(M, width)`; None: from `config.ctx_init` or N(0, 0.02).
    """

    def __init__(self, ctx: ClipContext, config: CoCoOpConfig, init: torch.Tensor | None = None) -> None:
        super().__init__(ctx, config, init)
        dim, width = ctx.text_weights.shape[1], self.context.shape[-1]
        hidden = max(1, dim // config.meta_reduction)
        with torch.random.fork_rng(devices=[]):  # a seeded initialisation that leaves the global RNG alone
            torch.manual_seed(ctx.seed)
            self.meta_net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, width))
        self.meta_net.to(ctx.device).requires_grad_(False)  # switched on only while training

    def trainable(self) -> list[nn.Parameter]:
        """The trained parameters: the context and the meta-net."""
        return [self.context, *self.meta_net.parameters()]

    def _logits(self, features: torch.Tensor) -> torch.Tensor:
        n, classes = len(features), self.prefix.shape[0]
        context = self.context[None] + self.meta_net(features)[:, None]  # (n, M, width)
        prompts = torch.cat(
            [
                self.prefix.expand(n, -1, -1, -1),
                context[:, None].expand(-1, classes, -1, -1),
                self.suffix.expand(n, -1, -1, -1),
            ],
            dim=2,
        ).flatten(0, 1)  # (n · C, length, width)
        text = encode_text_embeddings(self._model[0], prompts, self.tokens.repeat(n, 1)).float()
        return self.logit_scale * torch.einsum("nd,ncd->nc", features, text.view(n, classes, -1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits `(n, C)` of image features `(n, d)`."""
        step = max(1, PROMPTS_PER_CHUNK // self.prefix.shape[0])
        return torch.cat([self._logits(features[i : i + step]) for i in range(0, len(features), step)])


def fit(ctx: ClipContext, support: Support, config: CoCoOpConfig) -> CoCoOpHead:
    """Train the context and the meta-net with SGD on the cached support features (the paper's schedule).

    Args:
        ctx: base model and classes.
        support: support features and labels.
        config: the method's config.
    """
    head = CoCoOpHead(ctx, config)
    features, labels = support.features.to(ctx.device), support.labels.to(ctx.device)
    params = head.trainable()
    optimizer = torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    with frozen(ctx.model):
        losses = train_epochs(
            params,
            lambda index, _epoch: F.cross_entropy(head(features[index]), labels[index]),
            len(labels),
            optimizer=optimizer,
            lr_at=cosine_lr(config.lr, config.epochs, config.warmup_epochs, config.warmup_lr),
            epochs=config.epochs,
            batch_size=config.batch_size,
            seed=ctx.seed,
            threads=step_threads(head.step_flops() * min(len(labels), config.batch_size), ctx.device),
        )
    for param in params:
        param.requires_grad_(False)
    head.hparams = {"epochs": config.epochs, "final_loss": losses[-1]}
    return head


def restore(
    ctx: ClipContext, config: CoCoOpConfig, tensors: dict[str, torch.Tensor], hparams: dict
) -> CoCoOpHead:
    """Rebuild a saved CoCoOp head on `ctx`'s classes (any classes: nothing in it is per class).

    Args:
        ctx: base model and classes.
        config: the saved config.
        tensors: `context` and the meta-net's weights.
        hparams: the training summary.
    """
    head = CoCoOpHead(ctx, config, init=tensors["context"])
    head.load_state_dict(tensors)
    head.hparams = dict(hparams)
    return head


register_method(
    CoCoOpConfig,
    domain="vlm",
    task="fewshot",
    train=fit,
    load=restore,
    spec=FewShotSpec(class_agnostic=lambda config: True),
)
