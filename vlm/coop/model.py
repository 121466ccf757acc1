"""CoOp: learnable context vectors in the prompt, trained through the frozen text tower on cached image
features (the image tower never runs during training)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studio.core import register_method

from ..base import ClipContext, FewShotSpec, Head, Support, cosine_lr, frozen, step_threads, train_epochs
from ..text import encode_text_embeddings, text_tower, token_embeddings
from .config import CoOpConfig


def _token_count(tokenizer, text: str) -> int:
    """Number of tokens between start and end of text (the end token has the highest id)."""
    return int(tokenizer([text])[0].argmax()) - 1


def _layout(position: str, m: int, name_len: int, length: int) -> list[int]:
    """Source position in the "end" layout `[SOS] ctx… name . [EOT]` of every position of a prompt with the
    class name at `position` (middle: between the two halves of the context)."""
    ctx, name = list(range(1, 1 + m)), list(range(1 + m, 1 + m + name_len))
    body = {"end": ctx + name, "middle": ctx[: m // 2] + name + ctx[m // 2 :], "front": name + ctx}
    return [0, *body[position], *range(1 + m + name_len, length)]


class CoOpHead(Head):
    """Prompts `[SOS] ctx… name . [EOT]` (or name in front / middle) encoded by the frozen text tower.

    Args:
        ctx: the base model and classes (the model is referenced, not owned).
        config: the method's config.
        init: initial context `(M, width)` or `(C, M, width)`; None: from `config.ctx_init` or N(0, 0.02).
    """

    def __init__(self, ctx: ClipContext, config: CoOpConfig, init: torch.Tensor | None = None) -> None:
        super().__init__()
        self._model = [ctx.model]  # a list, so the frozen model is no submodule (not saved, not trained)
        self.logit_scale, self.position = ctx.logit_scale, config.class_token_position
        m, tokenizer, device = config.n_ctx, ctx.tokenizer, ctx.device
        placeholder = " ".join(["X"] * m)
        tokens = tokenizer([f"{placeholder} {name}." for name in ctx.classnames]).to(device)
        with torch.no_grad():
            embedded = token_embeddings(ctx.model, tokens).float()
        self.register_buffer("tokens", tokens, persistent=False)
        self.register_buffer("prefix", embedded[:, :1], persistent=False)
        self.register_buffer("suffix", embedded[:, 1 + m :], persistent=False)
        layouts = [
            _layout(self.position, m, _token_count(tokenizer, name), tokens.shape[1])
            for name in ctx.classnames
        ]
        self.register_buffer("order", torch.tensor(layouts, device=device), persistent=False)
        if init is None:
            init = self._initial_context(ctx, config)
        self.context = nn.Parameter(init.float().contiguous().clone().to(device), requires_grad=False)
        self._text: torch.Tensor | None = None

    @staticmethod
    def _initial_context(ctx: ClipContext, config: CoOpConfig) -> torch.Tensor:
        width = token_embeddings(ctx.model, torch.zeros(1, 1, dtype=torch.long, device=ctx.device)).shape[-1]
        if config.ctx_init:
            count = _token_count(ctx.tokenizer, config.ctx_init)
            if count != config.n_ctx:
                raise ValueError(
                    f"ctx_init {config.ctx_init!r} has {count} tokens but n_ctx={config.n_ctx}; set n_ctx={count} "
                    "or ctx_init='' for a random N(0, 0.02) initialisation"
                )
            tokens = ctx.tokenizer([config.ctx_init]).to(ctx.device)
            with torch.no_grad():
                init = token_embeddings(ctx.model, tokens)[0, 1 : 1 + count].float()
        else:
            generator = torch.Generator().manual_seed(ctx.seed)
            init = torch.randn(config.n_ctx, width, generator=generator) * 0.02
        return init.expand(ctx.num_classes, -1, -1) if config.class_specific else init

    def prompts(self) -> torch.Tensor:
        """Prompt embeddings `(C, context_length, width)`."""
        context = (
            self.context if self.context.dim() == 3 else self.context.expand(self.prefix.shape[0], -1, -1)
        )
        prompts = torch.cat([self.prefix, context, self.suffix], dim=1)  # the "end" layout
        if self.position == "end":
            return prompts
        # the other layouts permute positions within each prompt: one gather for all classes at once
        return prompts.gather(1, self.order[:, :, None].expand(-1, -1, prompts.shape[-1]))

    def text_features(self) -> torch.Tensor:
        """L2-normalised class text features `(C, d)`; cached while the context is not trained."""
        if self.context.requires_grad:
            self._text = None
            return encode_text_embeddings(self._model[0], self.prompts(), self.tokens).float()
        if self._text is None:
            with torch.no_grad():
                self._text = encode_text_embeddings(self._model[0], self.prompts(), self.tokens).float()
        return self._text

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits `(n, C)` of image features `(n, d)`."""
        return self.logit_scale * features @ self.text_features().T

    def step_flops(self) -> float:
        """Operations of one training step, about: forward + backward (3×) through the text transformer for
        every class prompt, up to its end-of-text token (the image features are a table lookup)."""
        weights = sum(p.numel() for p in text_tower(self._model[0])[0].transformer.parameters())
        length = int(self.tokens.argmax(-1).max()) + 1  # CLIP tokenizers: end-of-text has the highest id
        return 6.0 * weights * self.tokens.shape[0] * length


def fit(ctx: ClipContext, support: Support, config: CoOpConfig) -> CoOpHead:
    """Train the context vectors with SGD on the cached support features (whole support set, fixed schedule).

    Args:
        ctx: base model and classes.
        support: support features and labels.
        config: the method's config.
    """
    head = CoOpHead(ctx, config)
    features, labels = support.features.to(ctx.device), support.labels.to(ctx.device)
    epochs = config.epochs_for(support.shots)
    optimizer = torch.optim.SGD(
        [head.context], lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    with frozen(ctx.model):
        losses = train_epochs(
            [head.context],
            lambda index, _epoch: F.cross_entropy(head(features[index]), labels[index]),
            len(labels),
            optimizer=optimizer,
            lr_at=cosine_lr(config.lr, epochs, config.warmup_epochs, config.warmup_lr),
            epochs=epochs,
            batch_size=config.batch_size,
            seed=ctx.seed,
            threads=step_threads(head.step_flops(), ctx.device),
        )
    head.context.requires_grad_(False)
    head.hparams = {"epochs": epochs, "final_loss": losses[-1]}
    return head


def restore(
    ctx: ClipContext, config: CoOpConfig, tensors: dict[str, torch.Tensor], hparams: dict
) -> CoOpHead:
    """Rebuild a saved CoOp head from its context vectors.

    Args:
        ctx: base model and classes.
        config: the saved config.
        tensors: `context`.
        hparams: the training summary.
    """
    head = CoOpHead(ctx, config, init=tensors["context"])
    head.hparams = dict(hparams)
    return head


def _shared_context(config: CoOpConfig) -> bool:
    return not config.class_specific


register_method(
    CoOpConfig,
    domain="vlm",
    task="fewshot",
    train=fit,
    load=restore,
    spec=FewShotSpec(class_agnostic=_shared_context),
)
