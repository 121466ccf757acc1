"""Base class for method configs: validated dataclasses whose fields carry help texts."""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Union


def hfield(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field with a help text (shown as a tooltip in the UI and by `--help` in the CLI).

    Args:
        default: the default value; lists and dicts are copied per instance.
        help: one sentence on what the field does and what the authors used.
        **metadata: extra metadata, e.g. `choices=(...)`, or `option=False` for a field set from Python only
            (not offered by the CLI and the studio's forms).
    """
    meta = {"help": help, **metadata}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass
class MethodConfig:
    """Base of every method's config: validated fields that carry help texts, to and from a dict.

    Subclasses set `method` (the registry name) and add fields made with `hfield`; their values are checked
    against the annotations when the config is built (see `conform`), then by `validate`.

    Class attributes:
        method: the registry name of the method.
        python_only: inherited fields that mean nothing for this method's models, so the CLI and the studio's
            forms do not offer them (they stay settable from Python).
    """

    method: ClassVar[str] = ""
    python_only: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        # One check for every field of every method: the value has the annotated type (ints widen to floats,
        # integral floats narrow to ints, tuples become lists) and every float is finite.
        hints = _field_types(type(self))
        for f in dataclasses.fields(self):
            setattr(self, f.name, conform(f.name, getattr(self, f.name), hints[f.name]))
        self.validate()

    def validate(self) -> None:
        """Raise `ValueError` for out-of-range values. Subclasses extend it; types and finiteness are
        already checked when it runs."""

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MethodConfig:
        """Build a config from `to_dict` output; unknown keys are an error that lists the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; known fields: {sorted(known)}")
        return cls(**values)

    @classmethod
    def coerce(cls, config: MethodConfig | dict[str, Any] | None) -> MethodConfig:
        """`config` as this class: a dict of its fields is built into one, None gives the defaults.

        Raises:
            ValueError: an unknown field or a bad value, or a config of another class.
        """
        if config is None:
            return cls()
        if isinstance(config, dict):
            return cls.from_dict(config)
        if type(config) is not cls:
            raise ValueError(f"{cls.method} takes a {cls.__name__}, got {type(config).__name__}")
        return config

    @classmethod
    def help(cls) -> dict[str, str]:
        """Help text of every field, by field name."""
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}

    @classmethod
    def options(cls) -> list[dataclasses.Field]:
        """The fields a user sets from the CLI (`--set KEY=VALUE`) and the studio's forms, in declaration
        order: all but those made with `hfield(..., option=False)` and those named in `python_only` (set from
        Python only)."""
        return [
            f
            for f in dataclasses.fields(cls)
            if f.metadata.get("option", True) and f.name not in cls.python_only
        ]


@dataclass
class AdapterConfig(MethodConfig):
    """Config of a method that injects adapter layers into a model (`studio.core.inject`).

    Class attributes:
        merge_unsupported: why the method cannot be merged into the base weights ("" when it can).
    """

    merge_unsupported: ClassVar[str] = "this method has no merge"

    modules_to_save: list[str] | None = hfield(
        None,
        "Modules trained in full and saved beside the adapter. None: the classifier head, when the model has one.",
        option=False,
    )
    frozen_eval: bool = hfield(
        False, "Run the frozen backbone in eval mode while training (no dropout or drop-path)."
    )

    @property
    def mergeable(self) -> bool:
        """Whether the adapter can be folded into the base weights."""
        return not self.merge_unsupported


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


class _Mismatch(Exception):
    """A value that is not of the annotated type (caught to try the next member of a union)."""


def conform(name: str, value: Any, hint: Any) -> Any:
    """Check `value` against the type annotation `hint` of the config field `name`.

    Supports `bool`, `int`, `float`, `str`, `None`, `list[...]` and unions of them; other annotations accept
    any value. An int is accepted for a float (and returned as a float), an integral float for an int.

    Args:
        name: the field's name, used in the error message.
        value: the value to check.
        hint: the field's resolved annotation.

    Returns:
        The value, converted where accepted (int to float, integral float to int, tuple to list).

    Raises:
        ValueError: the value has another type (the message names the field and the expected type), or a
            float is NaN or infinite.
    """
    try:
        return _conform(name, value, hint)
    except _Mismatch:
        raise ValueError(f"{name} must be {_describe(hint)}, got {value!r}") from None


def _conform(name: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _conform(name, value, option)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        (item,) = typing.get_args(hint) or (Any,)
        return [conform(f"{name}[{i}]", v, item) for i, v in enumerate(value)]
    if hint is type(None):
        if value is not None:
            raise _Mismatch
        return value
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise _Mismatch
        return value
    if hint is int or hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Mismatch
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        if hint is float:
            return float(value)
        if not float(value).is_integer():
            raise _Mismatch
        return int(value)
    return value


def _describe(hint: Any, plural: bool = False) -> str:
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_describe(option, plural) for option in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint) or (Any,)
        return f"a list of {_describe(item, plural=True)}"
    names = {bool: ("true or false", "booleans"), int: ("an integer", "integers"), float: ("a number", "numbers"),
             str: ("a string", "strings"), type(None): ("None", "None")}  # fmt: skip
    default = getattr(hint, "__name__", str(hint))
    return names.get(hint, (default, default))[plural]


def check_range(name: str, value: float, low: float | None = None, high: float | None = None) -> None:
    """Raise `ValueError` unless `low <= value <= high` (either bound may be None; NaN is never in range)."""
    if (low is not None and not value >= low) or (high is not None and not value <= high):
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ValueError(f"{name} must be in {bounds}, got {value!r}")
