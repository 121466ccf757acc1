"""Fine-tuning and evaluating an adapted timm classifier."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from studio.core import get_adapter_state, train_mode
from studio.engine import Callback, TrainResult, check_count, check_number, check_two_classes, train

from .data import as_dataset
from .models import image_transform


def _check_classes(model: nn.Module, classes: Sequence[str]) -> None:
    head_classes = getattr(model, "num_classes", None)
    if head_classes and head_classes != len(classes):
        raise ValueError(
            f"the data has {len(classes)} classes but the model's head has {head_classes}; "
            f"create the model with num_classes={len(classes)}"
        )


def _classification_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    images, labels = batch
    return F.cross_entropy(model(images), labels)


def finetune(
    model: nn.Module,
    train_data: Any,
    val_data: Any = None,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 32,
    optimizer: str = "adamw",
    weight_decay: float = 0.0,
    warmup_steps: int | float = 0.1,
    augment: bool = False,
    on_corrupt: str = "error",
    output_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool | str | os.PathLike = False,
    overwrite: bool = False,
    callbacks: Sequence[Callback] = (),
    mixed_precision: str = "auto",
    grad_accum_steps: int = 1,
    num_workers: int = 0,
    seed: int = 0,
    progress: bool = True,
) -> TrainResult:
    """Train the adapter (and head) of `model` on an image classification task.

    Args:
        model: a timm model carrying an adapter (`studio.core.inject`).
        train_data: an ImageFolder directory or a list of `(image, label)` pairs.
        val_data: the same kind of data for the accuracy after each epoch, or None.
        epochs: passes over the training data.
        lr: peak learning rate (after warmup; cosine decay to zero).
        batch_size: images per optimizer step (before gradient accumulation).
        optimizer: `"adamw"` (SSF, AdaptFormer) or `"sgd"` (VPT's recipe, momentum 0.9).
        weight_decay: decoupled weight decay.
        warmup_steps: linear warmup in steps, or a fraction of all steps.
        augment: use timm's training augmentation instead of a plain resize.
        on_corrupt: `"error"` or `"skip"` for unreadable images in a folder.
        output_dir: where checkpoints go (needed for `resume`).
        checkpoint_every: steps between checkpoints (one is always written at the end).
        resume: continue from the latest checkpoint in `output_dir` (True) or from a checkpoint path.
        overwrite: replace another run's checkpoints in `output_dir` (otherwise such a folder is refused).
        callbacks: engine callbacks (progress for a UI, early stop).
        mixed_precision: `"auto"`, `"no"`, `"fp16"` or `"bf16"`.
        grad_accum_steps: batches accumulated per optimizer step.
        num_workers: data-loading processes.
        seed: seed for data order and initialisation of randomness.
        progress: show a progress bar.

    Returns:
        The engine's `TrainResult` (per-step loss and learning rate, per-epoch validation metrics).

    Raises:
        ValueError: a model without adapter, `epochs < 1`, a non-finite or non-positive `lr`, training data
            of one class only, or a head that does not fit the classes.
    """
    check_count("epochs", epochs)
    check_number("lr", lr)
    if get_adapter_state(model) is None:
        raise ValueError(
            "model has no adapter: call studio.core.inject(model, config) first (FullFinetuneConfig to train everything)"
        )
    train_set = as_dataset(train_data, image_transform(model, augment), on_corrupt=on_corrupt)
    _check_classes(model, train_set.classes)
    check_two_classes([label for _, label in train_set.samples], train_set.classes)
    val_set = None
    if val_data is not None:
        val_set = as_dataset(val_data, image_transform(model), train_set.classes, on_corrupt)
    eval_fn = (
        None if val_set is None else (lambda m: evaluate(m, val_set, batch_size=batch_size, progress=False))
    )
    return train(
        model,
        train_set,
        _classification_loss,
        batch_size=batch_size,
        epochs=epochs,
        lr=lr,
        optimizer=optimizer,
        weight_decay=weight_decay,
        warmup_steps=warmup_steps,
        grad_accum_steps=grad_accum_steps,
        mixed_precision=mixed_precision,
        num_workers=num_workers,
        eval_fn=eval_fn,
        callbacks=callbacks,
        output_dir=output_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
        overwrite=overwrite,
        seed=seed,
        progress=progress,
    )


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    data: Any,
    *,
    classes: Sequence[str] | None = None,
    batch_size: int = 64,
    on_corrupt: str = "error",
    progress: bool = True,
    predictions: bool = False,
) -> dict[str, Any]:
    """Accuracy and mean cross-entropy of `model` on a folder, a list of `(image, label)` or an `ImageDataset`.

    Args:
        model: the classifier.
        data: the test data.
        classes: class names the model was trained on (checked against a folder's classes).
        batch_size: images per forward pass.
        on_corrupt: `"error"` or `"skip"` for unreadable images in a folder.
        progress: show a progress bar.
        predictions: also return `(true, predicted)` class indices per image, from the same pass (for a
            confusion matrix).

    Returns:
        `{"accuracy": ..., "loss": ..., "n": ...}`, plus `"predictions"` when asked.
    """
    from tqdm.auto import tqdm

    dataset = (
        data
        if hasattr(data, "classes") and hasattr(data, "__getitem__")
        else as_dataset(data, image_transform(model), classes, on_corrupt)
    )
    _check_classes(model, dataset.classes)
    was_training = model.training
    train_mode(model, False)
    device = next(model.parameters()).device
    correct, loss, total, pairs = 0, 0.0, 0, []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for images, labels in tqdm(loader, desc="eval", disable=not progress, leave=False):
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        loss += F.cross_entropy(logits.float(), labels, reduction="sum").item()
        predicted = logits.argmax(-1)
        correct += (predicted == labels).sum().item()
        total += labels.numel()
        if predictions:
            pairs += zip(labels.tolist(), predicted.tolist(), strict=True)
    train_mode(model, was_training)
    scores = {"accuracy": correct / max(total, 1), "loss": loss / max(total, 1), "n": total}
    return {**scores, "predictions": pairs} if predictions else scores
