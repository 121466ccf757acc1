"""What every few-shot method shares: the frozen-CLIP context, the support set's cached features, the head
interface, the record each method registers, and a small training loop over cached features."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from studio.engine import cosine_decay


@dataclass
class ClipContext:
    """The frozen base model and the class set a head is built for.

    Args:
        model: the open_clip model (frozen).
        tokenizer: its tokenizer.
        classnames: class names in label order.
        templates: prompt templates of the zero-shot classifier.
        text_weights: zero-shot classifier `(C, d)`, L2-normalised rows.
        logit_scale: the model's `logit_scale.exp()`.
        seed: seed for initialisation, batches and splits.
    """

    model: nn.Module
    tokenizer: Callable
    classnames: list[str]
    templates: list[str]
    text_weights: torch.Tensor
    logit_scale: float
    seed: int = 0

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classnames)

    @property
    def device(self) -> torch.device:
        """The model's device."""
        return self.text_weights.device


@dataclass(frozen=True)
class FewShotSpec:
    """What `FewShotCLIP` needs to know about a few-shot method beyond its fit and restore functions (the
    `spec` of its `studio.core.register_method` call).

    Args:
        needs_support: whether the fit uses support images at all (zero-shot does not).
        augmented_views: `config -> number of augmented views of every support image the fit uses`
            (encoded once and cached, like the plain view).
        class_agnostic: `config -> whether the fitted head holds no per-class parameters` (a prompt
            context, a feature adapter), so that restoring it on other class names classifies classes it
            was never fitted on (`FewShotCLIP.transfer`).
    """

    needs_support: bool = True
    augmented_views: Callable[[Any], int] = lambda config: 0
    class_agnostic: Callable[[Any], bool] = lambda config: False


@dataclass
class Support:
    """Cached features of labelled support images.

    Args:
        features: plain-view features `(n, d)`, L2-normalised.
        labels: class indices `(n,)`.
        views: augmented-view features `(V, n, d)`, or None when the method needs none.
    """

    features: torch.Tensor
    labels: torch.Tensor
    views: torch.Tensor | None = None

    def subset(self, index: torch.Tensor) -> Support:
        """The support restricted to rows `index`."""
        views = None if self.views is None else self.views[:, index]
        return Support(self.features[index], self.labels[index], views)

    def epoch_views(self) -> torch.Tensor:
        """The features a trainer cycles through, one view per epoch: `(V, n, d)`, the augmented views or
        else the plain features alone."""
        if self.views is not None and len(self.views):
            return self.views
        return self.features[None]

    @property
    def shots(self) -> int:
        """Images per class, rounded mean over classes."""
        return max(1, round(len(self.labels) / max(1, len(self.labels.unique()))))


class Head(nn.Module):
    """A fitted classifier on image features. Subclasses implement `forward(features) -> logits`.

    Attributes:
        hparams: hyperparameters chosen while fitting (JSON-ready), saved beside the tensors.
    """

    def __init__(self) -> None:
        super().__init__()
        self.hparams: dict[str, Any] = {}

    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensors to save (the head's parameters and buffers)."""
        return {k: v.detach() for k, v in self.state_dict().items()}


class LinearHead(Head):
    """`logits = features @ weight.T + bias`.

    Args:
        weight: `(C, d)`.
        bias: `(C,)`; zeros when None.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", weight.detach().float().clone())
        self.register_buffer(
            "bias", torch.zeros(len(weight)) if bias is None else bias.detach().float().clone()
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits `(n, C)` of image features `(n, d)`."""
        return F.linear(features, self.weight, self.bias.to(features.device))


def cosine_lr(
    lr: float, epochs: int, warmup_epochs: int = 0, warmup_lr: float = 0.0
) -> Callable[[float], float]:
    """A learning rate by (fractional) epoch: constant `warmup_lr` for `warmup_epochs`, then cosine to 0.

    Args:
        lr: peak learning rate.
        epochs: epochs in the whole run.
        warmup_epochs: epochs at `warmup_lr` first.
        warmup_lr: the warmup learning rate.
    """

    def at(epoch: float) -> float:
        if epoch < warmup_epochs:
            return warmup_lr
        return lr * cosine_decay(epoch / max(1, epochs))

    return at


# Below this many floating-point operations per training step, a CPU step is a few hundred tiny kernels, and
# handing each one to a thread pool costs more than the arithmetic: measured on 2 busy cores, a CoOp step
# of the bundled model took 14 ms on one thread and 300 ms on two
SMALL_STEP_FLOPS = 1e9


def step_threads(flops: float, device: torch.device) -> int | None:
    """The intra-op thread count for training steps of about `flops` operations: 1 for small CPU steps,
    None (leave torch's setting) for larger ones and for accelerators.

    Args:
        flops: forward + backward operations of one step (an estimate).
        device: where the step runs.
    """
    return 1 if device.type == "cpu" and flops < SMALL_STEP_FLOPS else None


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


@contextlib.contextmanager
def intra_op_threads(count: int | None) -> Iterator[None]:
    """Run the block with `count` intra-op CPU threads (None: unchanged); the previous count is restored.

    Args:
        count: thread count, or None.
    """
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_epochs(
    params: Iterable[nn.Parameter],
    batch_loss: Callable[[torch.Tensor, int], torch.Tensor],
    n: int,
    *,
    optimizer: torch.optim.Optimizer,
    lr_at: Callable[[float], float],
    epochs: int,
    batch_size: int,
    seed: int,
    after_epoch: Callable[[int], None] | None = None,
    threads: int | None = None,
) -> list[float]:
    """Shuffled mini-batch training over `n` cached examples.

    Args:
        params: the trained parameters (their `requires_grad` is set).
        batch_loss: `(row indices, epoch) -> loss` for one batch.
        n: number of training examples.
        optimizer: optimizer over `params`.
        lr_at: learning rate by fractional epoch (see `cosine_lr`).
        epochs: number of epochs.
        batch_size: examples per step.
        seed: seed of the shuffling.
        after_epoch: called with the number of epochs done after each epoch.
        threads: intra-op CPU threads while training (see `step_threads`); None: unchanged.

    Returns:
        The mean loss of each epoch.
    """
    for param in params:
        param.requires_grad_(True)
    generator = torch.Generator().manual_seed(seed)
    steps = math.ceil(n / batch_size)
    losses = []
    with intra_op_threads(threads):
        for epoch in range(epochs):
            order, total = torch.randperm(n, generator=generator), 0.0
            for step in range(steps):
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(epoch + step / steps)
                loss = batch_loss(order[step * batch_size : (step + 1) * batch_size], epoch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item()
            losses.append(total / steps)
            if after_epoch is not None:
                after_epoch(epoch + 1)
    return losses


def restore_linear(
    ctx: ClipContext, config: Any, tensors: dict[str, torch.Tensor], hparams: dict
) -> LinearHead:
    """Rebuild a saved `LinearHead` (zero-shot or linear probe).

    Args:
        ctx: base model and classes (unused: the weights are saved).
        config: the saved method config.
        tensors: `weight`, `bias`.
        hparams: the chosen hyperparameters.
    """
    head = LinearHead(tensors["weight"], tensors["bias"])
    head.hparams = dict(hparams)
    return head
