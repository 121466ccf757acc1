"""Taking an adapter back out of a model without merging it, so a shared pipeline ends as it started."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

from studio.core import remove_adapter as remove_injected


def requires_grad_flags(model: nn.Module) -> dict[str, bool]:
    """`requires_grad` of every parameter, by name (to restore after `inject` froze them)."""
    return {name: p.requires_grad for name, p in model.named_parameters()}


def restore_requires_grad(model: nn.Module, flags: dict[str, bool]) -> None:
    """Give every parameter named in `flags` (from `requires_grad_flags`) its recorded `requires_grad`."""
    for name, param in model.named_parameters():
        if name in flags:
            param.requires_grad_(flags[name])


@contextlib.contextmanager
def frozen(*models: nn.Module) -> Iterator[None]:
    """Freeze `models` inside a `with` block, then give each parameter back its own `requires_grad`."""
    saved = [(model, requires_grad_flags(model)) for model in models]
    for model in models:
        model.requires_grad_(False)
    try:
        yield
    finally:
        for model, flags in saved:
            restore_requires_grad(model, flags)


def remove_adapter(model: nn.Module, flags: dict[str, bool] | None = None) -> nn.Module:
    """`studio.core.remove_adapter`, then give each parameter back its `requires_grad` from before the injection.

    Args:
        model: a model carrying an adapter injected with `studio.core.inject` (or `load_adapter`).
        flags: `requires_grad_flags(model)` taken before the injection, restored afterwards.

    Returns:
        The same model, with its original modules and weights.
    """
    remove_injected(model)
    if flags is not None:
        restore_requires_grad(model, flags)
    return model
