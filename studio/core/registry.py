"""The one registry of adaptation methods, for every domain: what each method is called, its config, and the
functions that build, train, save and load it.

Each method registers itself with one `register_method` call in its own folder; the CLI's options, the
studio's forms, artifact reading and sampling read the registry, so adding a method touches only its folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from torch import nn

from .config import MethodConfig
from .layer import adapter_parameter_names


@dataclass(frozen=True)
class Method:
    """A registered method.

    Attributes:
        name: the method's name within its domain, equal to `config_cls.method` (e.g. `"ssf"`).
        domain: the package that provides it: `"vision"`, `"vlm"` or `"diffusion"`.
        task: the job that trains it, which decides where the CLI and the studio offer it: `"finetune"`
            (vision), `"fewshot"` (vlm), `"personalize"` or `"control"` (diffusion).
        config_cls: the method's config dataclass.
        apply: for adapter methods, makes the structural change (wraps or adds modules); called by `inject`.
        trainable: for adapter methods, the names of the parameters the method trains.
        train: the method's trainer, called with its domain's arguments and `config=` (None: the domain's
            shared trainer, e.g. `vision.finetune`, trains it).
        save: writes a trained method (None: the domain's way, e.g. `studio.core.save_adapter`).
        load: restores a saved method, with the domain's arguments (None: the domain's way).
        spec: anything else the domain needs to know about the method, as the domain's own typed record
            (e.g. how `diffusion.generate` applies the method's artifacts).
    """

    name: str
    domain: str
    task: str
    config_cls: type[MethodConfig]
    apply: Callable[[nn.Module, Any], None] | None = None
    trainable: Callable[[nn.Module, Any], Iterable[str]] | None = None
    train: Callable[..., Any] | None = None
    save: Callable[..., Any] | None = None
    load: Callable[..., Any] | None = None
    spec: Any = None

    @property
    def qualified_name(self) -> str:
        """`domain/name`, unique across domains (e.g. `"vlm/linear_probe"`)."""
        return f"{self.domain}/{self.name}"


_METHODS: dict[tuple[str, str], Method] = {}


def register_method(
    config_cls: type[MethodConfig],
    apply: Callable[[nn.Module, Any], None] | None = None,
    trainable: Callable[[nn.Module, Any], Iterable[str]] | None = None,
    *,
    domain: str,
    task: str,
    train: Callable[..., Any] | None = None,
    save: Callable[..., Any] | None = None,
    load: Callable[..., Any] | None = None,
    spec: Any = None,
) -> Method:
    """Register a method under `config_cls.method` in `domain`.

    Args:
        config_cls: the config dataclass; its `method` class attribute is the name.
        apply: for adapter methods, `(model, config)` injecting the method's modules (see `inject`).
        trainable: `(model, config)` giving the parameter names to train; by default, for adapter methods,
            the parameters that adapter layers own (not those of the layers they wrap).
        domain: `"vision"`, `"vlm"` or `"diffusion"`.
        task: the job that trains it (see `Method.task`).
        train: the method's trainer (see `Method.train`).
        save: writes a trained method (see `Method.save`).
        load: restores a saved method (see `Method.load`).
        spec: the domain's own record of the method (see `Method.spec`).

    Returns:
        The registered `Method`.

    Raises:
        ValueError: the config class sets no `method`, or another config class holds the name in `domain`.
    """
    name = config_cls.method
    if not name:
        raise ValueError(f"{config_cls.__name__} must set the class attribute `method`")
    held = _METHODS.get((domain, name))
    if held is not None and held.config_cls is not config_cls:
        raise ValueError(f"method {domain}/{name} is already registered by {held.config_cls.__name__}")
    if apply is not None and trainable is None:
        trainable = lambda model, _config: adapter_parameter_names(model)  # noqa: E731
    method = Method(name, domain, task, config_cls, apply, trainable, train, save, load, spec)
    _METHODS[(domain, name)] = method
    return method


def get_method(name: str, domain: str | None = None) -> Method:
    """The registered method called `name` (in `domain`, when given).

    Args:
        name: the method's name, or its qualified name `domain/name`.
        domain: the domain to look in; None looks in all and needs the name to be unique.

    Raises:
        KeyError: an unknown name (the message lists the known ones) or one that several domains use.
    """
    if domain is None and "/" in name:
        domain, name = name.split("/", 1)
    found = [m for m in list_methods(domain) if m.name == name]
    if len(found) == 1:
        return found[0]
    if found:
        raise KeyError(
            f"method {name!r} exists in several domains ({', '.join(m.domain for m in found)}); "
            f"name one, e.g. {found[0].qualified_name!r}"
        )
    known = method_names(domain) if domain else [m.qualified_name for m in list_methods()]
    where = f" in domain {domain!r}" if domain else ""
    raise KeyError(
        f"unknown method {name!r}{where}; known methods: {', '.join(known) or '(none registered)'}"
        " (import the domain package, e.g. `import vision`, to register its methods)"
    )


def method_of(config: MethodConfig) -> Method:
    """The registered method whose config class `config` is an instance of (exactly that class).

    Raises:
        KeyError: no method is registered with this config class.
    """
    for method in _METHODS.values():
        if type(config) is method.config_cls:
            return method
    raise KeyError(f"{type(config).__name__} is not the config of a registered method")


def list_methods(domain: str | None = None, task: str | None = None) -> list[Method]:
    """Every registered method (of `domain` and `task`, when given), sorted by domain and name.

    Args:
        domain: keep only this domain's methods.
        task: keep only methods trained by this job (e.g. `"personalize"`).
    """
    return [
        m
        for _, m in sorted(_METHODS.items())
        if (domain is None or m.domain == domain) and (task is None or m.task == task)
    ]


def method_names(domain: str, task: str | None = None) -> list[str]:
    """The names of `domain`'s methods (trained by `task`, when given), sorted."""
    return [m.name for m in list_methods(domain, task)]


def method_configs(domain: str, task: str | None = None) -> dict[str, type[MethodConfig]]:
    """Method name -> config class for `domain`'s methods (trained by `task`, when given), sorted by name."""
    return {m.name: m.config_cls for m in list_methods(domain, task)}
