"""Base class for method configs: validated dataclasses whose fields carry help texts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


def hfield(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field with a help text (shown as a tooltip in the UI and by `--help` in the CLI).

    Args:
        default: the default value; lists and dicts are copied per instance.
        help: one sentence on what the field does and what the authors used.
        **metadata: extra metadata, e.g. `choices=(...)`.
    """
    meta = {"help": help, **metadata}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass
class AdapterConfig:
    """Fields every method shares. Subclasses set `method` and add their own validated fields.

    Class attributes:
        method: the registry name of the method.
        merge_unsupported: why the method cannot be merged into the base weights ("" when it can).
    """

    method: ClassVar[str] = ""
    merge_unsupported: ClassVar[str] = "this method has no merge"

    modules_to_save: list[str] | None = hfield(
        None,
        "Modules trained in full and saved beside the adapter. None: the classifier head, when the model has one.",
    )
    frozen_eval: bool = hfield(
        False, "Run the frozen backbone in eval mode while training (no dropout or drop-path)."
    )

    def __post_init__(self) -> None:
        if self.modules_to_save is not None and not isinstance(self.modules_to_save, (list, tuple)):
            raise ValueError(f"modules_to_save must be a list of module names, got {self.modules_to_save!r}")
        self.validate()

    def validate(self) -> None:
        """Raise `ValueError` for out-of-range values. Subclasses extend it."""

    @property
    def mergeable(self) -> bool:
        """Whether the adapter can be folded into the base weights."""
        return not self.merge_unsupported

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AdapterConfig:
        """Build a config from `to_dict` output; unknown keys are an error that lists the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; known fields: {sorted(known)}")
        return cls(**values)

    @classmethod
    def help(cls) -> dict[str, str]:
        """Help text of every field, by field name."""
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def check_range(name: str, value: float, low: float | None = None, high: float | None = None) -> None:
    """Raise `ValueError` unless `low <= value <= high` (either bound may be None)."""
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ValueError(f"{name} must be in {bounds}, got {value!r}")
