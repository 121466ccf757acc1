"""The registry of adaptation methods: a name, a config class and how to apply it to a model."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from torch import nn

from .config import AdapterConfig
from .layer import adapter_parameter_names


@dataclass(frozen=True)
class Method:
    """A registered method.

    Attributes:
        name: registry name, equal to `config_cls.method`.
        config_cls: the method's config dataclass.
        apply: makes the structural change (wraps or adds modules); called by `inject`.
        trainable: names of the parameters the method trains (the head is added by `inject`).
    """

    name: str
    config_cls: type[AdapterConfig]
    apply: Callable[[nn.Module, AdapterConfig], None]
    trainable: Callable[[nn.Module, AdapterConfig], Iterable[str]]


_METHODS: dict[str, Method] = {}


def register_method(
    config_cls: type[AdapterConfig],
    apply: Callable[[nn.Module, AdapterConfig], None],
    trainable: Callable[[nn.Module, AdapterConfig], Iterable[str]] | None = None,
) -> Method:
    """Register a method under `config_cls.method`.

    Args:
        config_cls: the config dataclass; its `method` class attribute is the name.
        apply: function `(model, config)` that injects the method's modules.
        trainable: function `(model, config)` giving the parameter names to train; by default the
            parameters that adapter layers own (not those of the layers they wrap).
    """
    name = config_cls.method
    if not name:
        raise ValueError(f"{config_cls.__name__} must set the class attribute `method`")
    if name in _METHODS and _METHODS[name].config_cls is not config_cls:
        raise ValueError(f"method {name!r} is already registered by {_METHODS[name].config_cls.__name__}")
    method = Method(
        name, config_cls, apply, trainable or (lambda model, _config: adapter_parameter_names(model))
    )
    _METHODS[name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method called `name`; an unknown name is an error listing the known ones."""
    try:
        return _METHODS[name]
    except KeyError:
        raise KeyError(
            f"unknown method {name!r}; known methods: {', '.join(sorted(_METHODS)) or '(none registered)'}"
            " (import the domain package, e.g. `import vision`, to register its methods)"
        ) from None


def list_methods() -> list[str]:
    """Names of all registered methods."""
    return sorted(_METHODS)
