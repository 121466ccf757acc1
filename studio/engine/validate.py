"""Checks of training arguments shared by the engine and the domain trainers, each failing with one clear line."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence


def check_number(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Require a finite real number `> 0` (or `>= 0` with `allow_zero`): NaN or infinity would train silently
    into NaN weights.

    Args:
        name: the argument's name, as the user passes it (e.g. `"lr"`).
        value: its value.
        allow_zero: accept 0 (e.g. a weight decay).

    Returns:
        `value` as a `float`.

    Raises:
        ValueError: naming the argument and the value.
    """
    bound = ">= 0" if allow_zero else "> 0"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def check_count(name: str, value: int) -> int:
    """Require an integer `>= 1`, such as a number of steps or epochs: a run without steps does no work.

    Args:
        name: the argument's name (e.g. `"epochs"`).
        value: its value.

    Returns:
        `value` as an `int`.

    Raises:
        ValueError: naming the argument and the value.
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_two_classes(labels: Sequence[int], classes: Sequence[str]) -> None:
    """Require training labels of at least two classes: one class trains a constant classifier (loss 0).

    Args:
        labels: the class index of every training sample.
        classes: class names by index.

    Raises:
        ValueError: naming the only class present.
    """
    present = sorted(set(int(label) for label in labels))
    if len(present) < 2:
        names = ", ".join(repr(classes[i]) for i in present) or "none"
        raise ValueError(
            f"the training data has only one class ({names}); a classifier needs images of at least two classes"
        )


def check_loss(loss: float, step: int, lr: float) -> None:
    """Stop a run whose loss became NaN or infinite, naming the step, before anything is saved from it.

    Args:
        loss: the step's loss.
        step: the optimizer step it belongs to.
        lr: the learning rate in use.

    Raises:
        ValueError: when `loss` is not finite.
    """
    if not math.isfinite(loss):
        raise ValueError(
            f"loss is {loss} at step {step}; lower the learning rate (now {lr:g}) or check the data and "
            "settings for NaN/inf values"
        )
