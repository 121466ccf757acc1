"""Applying SSF to a model."""

from __future__ import annotations

from torch import nn

from studio.core import find_targets, register_method, replace_module, resolve_modules_to_save

from .config import SSFConfig
from .layer import SUPPORTED, ScaleShift


def _weight_read_directly(model: nn.Module) -> set[str]:
    """Fused `qkv` layers whose attention never calls them: it runs `F.linear(x, qkv.weight, qkv_bias)` with a
    q/v bias of its own (EVA, BEiT). A scale-shift after such a layer must also scale that bias and add its
    shift, which no wrapper of the layer alone can do, so SSF leaves these layers out.
    """
    return {
        f"{name}.qkv"
        for name, module in model.named_modules()
        if getattr(module, "q_bias", None) is not None
        and isinstance(getattr(module, "qkv", None), nn.Linear)
        and not getattr(module, "qkv_bias_separate", False)
    }


def apply_ssf(model: nn.Module, config: SSFConfig) -> None:
    """Follow every targeted Linear/LayerNorm/Conv2d outside the head with a scale-shift.

    Raises:
        ValueError: a target is a fused qkv whose weight the attention reads directly (EVA, BEiT).
    """
    direct = _weight_read_directly(model)
    targets = find_targets(
        model,
        config.target_modules,
        config.exclude_modules,
        predicate=lambda m: isinstance(m, SUPPORTED),
        skip=resolve_modules_to_save(model, config),
    )
    if config.target_modules is not None and (named := sorted(direct & {n for n, _ in targets})):
        raise ValueError(
            f"SSF cannot follow {named[0]!r} of {type(model).__name__}: its attention reads qkv.weight directly "
            "with a q/v bias of its own, so a scale-shift there would need a change to that attention; "
            "target other layers (by default SSF leaves these out)"
        )
    for name, module in targets:
        if name not in direct:
            replace_module(model, name, ScaleShift(module, config.init_std))


register_method(SSFConfig, apply_ssf, domain="vision", task="finetune")
