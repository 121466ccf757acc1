"""Folding a mergeable adapter into the base weights, undoing that, and taking an adapter back out."""

from __future__ import annotations

import torch
from torch import nn

from .layer import AdapterLayer, adapter_layers
from .state import STATE_ATTR, require_adapter_state
from .targets import replace_module


def _mergeable_layers(model: nn.Module) -> list[tuple[str, AdapterLayer]]:
    config = require_adapter_state(model).config
    if not config.mergeable:
        raise ValueError(f"{config.method!r} adapters cannot be merged: {config.merge_unsupported}")
    return adapter_layers(model)


@torch.no_grad()
def merge(model: nn.Module, unload: bool = False) -> nn.Module:
    """Fold the adapter into the base weights: same outputs, base-model speed.

    Args:
        model: a model carrying a mergeable adapter (e.g. SSF, LoRA).
        unload: also remove the wrappers, returning a plain model whose `state_dict()` has the base
            model's keys (the adapter can then no longer be unmerged).

    Returns:
        The same model object.

    Raises:
        ValueError: if the method is not mergeable (the message says why).
    """
    for _, layer in _mergeable_layers(model):
        if not layer.merged:
            layer.merge()
            layer.merged = True
    if unload:
        _unwrap(model)
    return model


@torch.no_grad()
def unmerge(model: nn.Module) -> nn.Module:
    """Undo `merge` (without unload): restores the base weights and runs the adapter branch again."""
    for _, layer in _mergeable_layers(model):
        if layer.merged:
            layer.unmerge()
            layer.merged = False
    return model


@torch.no_grad()
def remove_adapter(model: nn.Module) -> nn.Module:
    """Undo `inject` without merging: every adapter layer gives way to the module it wraps, unmerged first.

    A model shared between tasks (a pipeline's UNet, a backbone) thus ends with its original modules and
    weights. A model without an adapter is returned unchanged.

    Args:
        model: a model carrying an adapter injected with `inject` or `load_adapter`.

    Returns:
        The same model object. `requires_grad` flags stay as `inject` left them (frozen).
    """
    for _, layer in adapter_layers(model):
        if layer.merged:
            layer.unmerge()
            layer.merged = False
    _unwrap(model)
    return model


def _unwrap(model: nn.Module) -> None:
    for name, layer in adapter_layers(model):
        replace_module(model, name, layer.base_layer)
    if hasattr(model, STATE_ATTR):
        delattr(model, STATE_ATTR)
