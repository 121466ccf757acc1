"""Optimizer construction from the trainable parameters only, and mixed-precision resolution."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

OptimizerFactory = Callable[[list[dict], float, float], torch.optim.Optimizer]
"""`(param_groups, lr, weight_decay) -> optimizer`: an optimizer the engine does not name (e.g. an 8-bit AdamW)."""


def trainable_param_groups(
    model: nn.Module, param_groups: Callable[[nn.Module], list[dict]] | None = None
) -> list[dict]:
    """Parameter groups for the optimizer, holding only parameters with `requires_grad`.

    Args:
        model: the (unwrapped) model.
        param_groups: optional `model -> list of group dicts` (e.g. per-group `lr`); frozen parameters in
            them are dropped, and groups left empty are removed.

    Returns:
        A non-empty list of group dicts.
    """
    if param_groups is None:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    else:
        groups = []
        for group in param_groups(model):
            params = [p for p in group["params"] if p.requires_grad]
            if params:
                groups.append({**group, "params": params})
    if not groups or not any(group["params"] for group in groups):
        raise ValueError("the model has no parameter with requires_grad=True; nothing to train")
    return groups


def build_optimizer(
    groups: list[dict], name: str | OptimizerFactory, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """Create the optimizer.

    Args:
        groups: parameter groups from `trainable_param_groups`.
        name: `"adamw"`, `"sgd"` (momentum 0.9) or an `OptimizerFactory`.
        lr: default learning rate (a group's own `lr` wins).
        weight_decay: default weight decay (a group's own `weight_decay` wins).

    Returns:
        The optimizer.
    """
    if callable(name):
        return name(groups, lr, weight_decay)
    name = name.lower()
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; expected 'adamw' or 'sgd'")


def resolve_mixed_precision(mixed_precision: str) -> str:
    """Map `"auto"` to a concrete `accelerate` mixed-precision mode.

    Args:
        mixed_precision: `"auto"`, `"no"`, `"fp16"` or `"bf16"`. `"auto"` means bf16 on a CUDA device that
            supports it, else fp16 on CUDA, and `"no"` without CUDA.

    Returns:
        One of `"no"`, `"fp16"`, `"bf16"`.
    """
    if mixed_precision == "auto":
        if not torch.cuda.is_available():
            return "no"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if mixed_precision not in ("no", "fp16", "bf16"):
        raise ValueError(f"mixed_precision must be 'auto', 'no', 'fp16' or 'bf16', got {mixed_precision!r}")
    return mixed_precision
