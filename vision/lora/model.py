"""Applying LoRA to linear layers."""

from __future__ import annotations

from torch import nn

from studio.core import LoRALinear, find_targets, register_method, replace_module, resolve_modules_to_save

from .config import LoRAConfig


def _is_fused_qkv(name: str, layer: nn.Linear) -> bool:
    return name.split(".")[-1] == "qkv" and layer.out_features == 3 * layer.in_features


def apply_lora(model: nn.Module, config: LoRAConfig) -> None:
    """Wrap every targeted `nn.Linear`; fused qkv layers get updates on `config.qkv_parts` only.

    Raises:
        ValueError: no Linear matches the targets (ConvNeXt has no `qkv`: its MLP linears are `fc1`, `fc2`).
    """
    try:
        targets = find_targets(
            model,
            config.target_modules,
            predicate=lambda m: isinstance(m, nn.Linear),
            skip=resolve_modules_to_save(model, config),
        )
    except ValueError as err:
        raise ValueError(
            f"LoRA on {type(model).__name__}: no Linear layer matches target_modules={config.target_modules!r}; "
            "name its Linear layers, e.g. target_modules=['fc1', 'fc2'] for the MLP linears "
            f"({err})"
        ) from None
    for name, layer in targets:
        if _is_fused_qkv(name, layer):
            slices = sorted("qkv".index(c) for c in set(config.qkv_parts))
            wrapped = LoRALinear(layer, config.r, config.alpha, config.dropout, num_slices=3, slices=slices)
        else:
            wrapped = LoRALinear(layer, config.r, config.alpha, config.dropout)
        replace_module(model, name, wrapped)


register_method(LoRAConfig, apply_lora, domain="vision", task="finetune")
