"""Controls built from a method's config dataclass, each with the field's help text as its tooltip."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from typing import Any

import gradio as gr


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def field_control(f: dataclasses.Field) -> gr.components.Component:
    """One control for a config field: checkbox, number, dropdown (`choices` metadata) or JSON text.

    Args:
        f: the dataclass field; its `help` metadata becomes the control's info text.
    """
    default, help_text = _default(f), f.metadata.get("help", "")
    label = f.name.replace("_", " ")
    if f.metadata.get("choices"):
        return gr.Dropdown(list(f.metadata["choices"]), value=default, label=label, info=help_text)
    if isinstance(default, bool):
        return gr.Checkbox(value=default, label=label, info=help_text)
    if isinstance(default, int):
        return gr.Number(value=default, label=label, info=help_text, precision=0)
    if isinstance(default, float):
        return gr.Number(value=default, label=label, info=help_text)
    if isinstance(default, str):
        return gr.Textbox(value=default, label=label, info=help_text)
    text = "" if default is None else json.dumps(default)
    return gr.Textbox(value=text, label=label, info=f"{help_text} (JSON; empty: none)")


def number(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    whole: bool = False,
) -> int | float:
    """A form's number checked before anything is queued: finite, whole if asked, within its bounds.

    Args:
        name: the field's name as the page shows it (e.g. `"steps"`).
        value: what the page sent (a number, a numeric string or None).
        minimum: the smallest allowed value.
        maximum: the largest allowed value.
        above: a value it must exceed (e.g. 0 for a learning rate).
        whole: require a whole number and return an `int`.

    Returns:
        The value as an `int` (`whole`) or a `float`.

    Raises:
        ValueError: one line naming the field, the rule it breaks and the value sent.
    """
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} needs a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if whole and x != int(x):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    for sign, bound, broken in (("≥", minimum, x.__lt__), ("≤", maximum, x.__gt__), (">", above, x.__le__)):
        if bound is not None and broken(bound):
            raise ValueError(f"{name} must be {sign} {bound:,}, got {x:,g}")
    return int(x) if whole else x


def _shown(f: dataclasses.Field, value: Any) -> Any:
    """A config value as its control shows it (JSON text for lists, dicts and None, as `field_control`)."""
    default = _default(f)
    if isinstance(default, bool | int | float | str) or f.metadata.get("choices"):
        return value
    return "" if value is None else json.dumps(value)


def _parse(f: dataclasses.Field, value: Any) -> Any:
    default = _default(f)
    if isinstance(default, bool) or f.metadata.get("choices"):
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        return number(f.name, value, whole=True)
    if isinstance(default, float):
        return number(f.name, value)
    if isinstance(default, str):
        return value
    text = (value or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a plain string, e.g. a module name or a regex


class MethodForm:
    """Option groups for several methods, one visible at a time.

    Args:
        configs: method name -> config class.
        selected: the method shown first.
    """

    def __init__(self, configs: dict[str, type], selected: str) -> None:
        self.configs = dict(configs)
        self.groups: dict[str, gr.Group] = {}
        self.controls: list[tuple[str, dataclasses.Field, gr.components.Component]] = []
        for name, cls in self.configs.items():
            with gr.Accordion(f"{name} options", open=False, visible=name == selected) as group:
                for f in cls.options():
                    self.controls.append((name, f, field_control(f)))
            self.groups[name] = group

    @property
    def inputs(self) -> list[gr.components.Component]:
        """Every option control, in a fixed order (pass them as event inputs after your own)."""
        return [control for _, _, control in self.controls]

    def show(self, method: str) -> list[Any]:
        """Visibility updates for the groups (outputs: `list(self.groups.values())`)."""
        return [gr.Accordion(visible=name == method) for name in self.groups]

    def values(self, method: str, options: dict[str, Any]) -> list[Any]:
        """The values of `inputs` that show `options` of `method` (the inverse of `options`); other methods'
        controls are left as they are."""
        return [
            _shown(f, options[f.name]) if name == method and f.name in options else gr.skip()
            for name, f, _ in self.controls
        ]

    def options(self, method: str, values: list[Any]) -> dict[str, Any]:
        """The option values of `method` from the values of `inputs`, parsed to the fields' types.

        Raises:
            ValueError: a value of the wrong type, or an unknown method.
        """
        if method not in self.configs:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(self.configs)}")
        return {
            f.name: _parse(f, value)
            for (name, f, _), value in zip(self.controls, values, strict=True)
            if name == method
        }


def restore_on_load(
    job: Callable[[], Any], controls: list[gr.components.Component], values: Callable[[dict], list]
) -> None:
    """After a page (re)load, set a tab's controls from the record of the job it shows, so the form
    describes that job rather than the defaults. Create it inside the tab's layout.

    Args:
        job: returns the job the tab shows, or None (e.g. `ProgressPanel.job`).
        controls: the controls to fill.
        values: the job's params -> one value per control.
    """

    def fill() -> list[Any]:
        shown = job()
        return [gr.skip()] * len(controls) if shown is None else values(shown.params)

    gr.on(None, fill, None, controls, queue=False, show_progress="hidden")
