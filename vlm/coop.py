"""CoOp: learnable context vectors in the prompt, trained through the frozen text tower on cached image
features (the image tower never runs during training)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from studio.core import AdapterConfig, check_range, hfield

from .base import ClipContext, Head, Support, cosine_lr, step_threads, train_epochs
from .text import encode_text_embeddings, text_tower, token_embeddings

POSITIONS = ("end", "middle", "front")


@dataclass
class CoOpConfig(AdapterConfig):
    """CoOp: M context vectors replace the words of the prompt; only they are trained."""

    method = "coop"

    n_ctx: int = hfield(4, "Number of context vectors M (the paper uses 4 or 16).")
    ctx_init: str = hfield(
        "a photo of a",
        "Words whose embeddings initialise the context (must be n_ctx tokens); '': N(0, 0.02).",
    )
    class_specific: bool = hfield(False, "One context per class instead of one shared by all classes.")
    class_token_position: str = hfield(
        "end", "Where the class name goes: end, middle or front.", choices=POSITIONS
    )
    epochs: int | None = hfield(None, "Training epochs; None: 50 at 1 shot, 100 at 2–4, 200 at 8 or more.")
    lr: float = hfield(0.002, "SGD learning rate (cosine schedule).")
    warmup_epochs: int = hfield(1, "Epochs at warmup_lr first.")
    warmup_lr: float = hfield(1e-5, "Constant learning rate during warmup.")
    momentum: float = hfield(0.9, "SGD momentum.")
    weight_decay: float = hfield(5e-4, "SGD weight decay.")
    batch_size: int = hfield(32, "Images per step.")

    def validate(self) -> None:
        """Check ranges."""
        check_range("n_ctx", self.n_ctx, 1)
        if self.class_token_position not in POSITIONS:
            raise ValueError(
                f"class_token_position must be one of {POSITIONS}, got {self.class_token_position!r}"
            )
        if self.epochs is not None:
            check_range("epochs", self.epochs, 1)
        for name in ("lr", "warmup_lr", "momentum", "weight_decay"):
            check_range(name, getattr(self, name), 0.0)
        check_range("warmup_epochs", self.warmup_epochs, 0)
        check_range("batch_size", self.batch_size, 1)

    def epochs_for(self, shots: int) -> int:
        """Epochs for `shots` images per class (the paper's schedule unless `epochs` is set)."""
        if self.epochs is not None:
            return self.epochs
        return 50 if shots <= 1 else 100 if shots <= 4 else 200


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


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients for `model`; restores both afterwards."""
    flags, was_training = [p.requires_grad for p in model.parameters()], model.training
    model.eval().requires_grad_(False)
    try:
        yield
    finally:
        model.train(was_training)
        for param, flag in zip(model.parameters(), flags, strict=True):
            param.requires_grad_(flag)


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
