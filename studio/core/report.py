"""Counting what an adapter trains."""

from __future__ import annotations

from torch import nn

from .state import get_adapter_state


def parameter_report(model: nn.Module) -> dict[str, float | int]:
    """Trainable and total parameter counts.

    Returns:
        `trainable`, `total`, `percent` (trainable / total · 100), `adapter` (the method's own parameters)
        and `head` (parameters of modules_to_save, e.g. the classifier).
    """
    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    trainable = sum(p.numel() for p in params.values() if p.requires_grad)
    state = get_adapter_state(model)
    adapter = sum(params[n].numel() for n in state.trainable) if state else trainable
    head = 0
    if state:
        own = set(state.trainable)
        head = sum(
            p.numel()
            for m in state.modules_to_save
            for n, p in model.get_submodule(m).named_parameters()
            if f"{m}.{n}" not in own
        )
    return {
        "trainable": trainable,
        "total": total,
        "percent": 100.0 * trainable / max(total, 1),
        "adapter": adapter,
        "head": head,
    }
