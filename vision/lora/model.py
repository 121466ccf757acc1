"""Applying LoRA to linear layers."""

from __future__ import annotations

from torch import nn

from studio.core import find_targets, register_method, replace_module, resolve_modules_to_save

from .config import LoRAConfig
from .layer import LoRALinear


def _is_fused_qkv(name: str, layer: nn.Linear) -> bool:
    return name.split(".")[-1] == "qkv" and layer.out_features == 3 * layer.in_features


def apply_lora(model: nn.Module, config: LoRAConfig) -> None:
    """Wrap every targeted `nn.Linear`; fused qkv layers get updates on `config.qkv_parts` only."""
    targets = find_targets(
        model,
        config.target_modules,
        predicate=lambda m: isinstance(m, nn.Linear),
        skip=resolve_modules_to_save(model, config),
    )
    for name, layer in targets:
        if _is_fused_qkv(name, layer):
            slices = sorted("qkv".index(c) for c in set(config.qkv_parts))
            wrapped = LoRALinear(layer, config.r, config.alpha, config.dropout, num_slices=3, slices=slices)
        else:
            wrapped = LoRALinear(layer, config.r, config.alpha, config.dropout)
        replace_module(model, name, wrapped)


register_method(LoRAConfig, apply_lora)
