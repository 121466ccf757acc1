"""Injecting a method into a model, freezing the rest, and switching the adapter off temporarily."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

from .config import AdapterConfig
from .layer import adapter_layers
from .registry import method_of
from .state import STATE_ATTR, AdapterState, get_adapter_state, require_adapter_state


def classifier_name(model: nn.Module) -> str | None:
    """Name of the model's classifier head (timm's `get_classifier()`), or None if it has none or no weights."""
    get_classifier = getattr(model, "get_classifier", None)
    if get_classifier is None:
        return None
    head = get_classifier()
    if not isinstance(head, nn.Module) or not any(True for _ in head.parameters()):
        return None
    return next((name for name, module in model.named_modules() if module is head and name), None)


def resolve_modules_to_save(model: nn.Module, config: AdapterConfig) -> list[str]:
    """The modules trained in full beside the adapter: `config.modules_to_save`, or the classifier head."""
    if config.modules_to_save is None:
        head = classifier_name(model)
        return [head] if head else []
    names = dict(model.named_modules())
    missing = [m for m in config.modules_to_save if m not in names]
    if missing:
        raise ValueError(f"modules_to_save {missing} are not modules of {type(model).__name__}")
    return list(config.modules_to_save)


def inject(model: nn.Module, config: AdapterConfig) -> nn.Module:
    """Add a method's parameters to `model` and freeze everything else except `modules_to_save`.

    Args:
        model: the base model (changed in place).
        config: a method config, e.g. `vision.SSFConfig()`.

    Returns:
        The same model, now carrying the adapter.

    Raises:
        ValueError: if the model already carries an adapter (adapters do not stack).
    """
    existing = get_adapter_state(model)
    if existing is not None:
        raise ValueError(
            f"model already carries a {existing.config.method!r} adapter; start from a fresh base model"
        )
    try:
        method = method_of(config)
    except KeyError as err:
        raise TypeError(f"inject takes the config of a registered method: {err.args[0]}") from None
    if method.apply is None:
        raise TypeError(
            f"{method.qualified_name} injects no adapter layers; train it with its own trainer "
            f"({type(config).__name__} is not an adapter config)"
        )
    modules_to_save = resolve_modules_to_save(model, config)
    method.apply(model, config)
    trainable = list(dict.fromkeys(method.trainable(model, config)))
    keep = set(trainable)
    for name, param in model.named_parameters():
        param.requires_grad_(name in keep or any(name.startswith(m + ".") for m in modules_to_save))
    setattr(model, STATE_ATTR, AdapterState(config, trainable, modules_to_save))
    return model


@contextlib.contextmanager
def disable_adapters(model: nn.Module) -> Iterator[nn.Module]:
    """Run the model without its adapter branches inside a `with` block (the head stays as trained).

    Raises:
        ValueError: for methods that change base weights in place (full fine-tune, BitFit, linear probe).
    """
    state = require_adapter_state(model)
    layers = [layer for _, layer in adapter_layers(model)]
    if not layers:
        raise ValueError(
            f"method {state.config.method!r} trains base weights in place; there is nothing to disable"
        )
    previous = [layer.disabled for layer in layers]
    for layer in layers:
        layer.disabled = True
    try:
        yield model
    finally:
        for layer, was in zip(layers, previous, strict=False):
            layer.disabled = was
