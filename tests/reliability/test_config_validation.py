"""Every option of every method config is type-checked and every float is finite, through the one shared
check in `studio.core.MethodConfig.__post_init__` (NaN settings used to train silently into NaN artifacts)."""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest

import diffusion
import diffusion.control
import vision
import vlm
from studio.core import MethodConfig, check_range, conform

assert vision and vlm and diffusion.control  # imported for their method configs


def _config_classes() -> list[type[MethodConfig]]:
    found, todo = [], [MethodConfig]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.method and cls.__module__.split(".")[0] in ("vision", "vlm", "diffusion"):
            found.append(cls)
    return sorted(set(found), key=lambda c: (c.__module__, c.__name__))


def _fields(kind: type) -> list[tuple[type, str]]:
    """(config class, field name) for every field whose annotation includes `kind`."""
    out = []
    for cls in _config_classes():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            if hint is kind or kind in typing.get_args(hint):
                out.append((cls, f.name))
    return out


FLOAT_FIELDS = _fields(float)
INT_FIELDS = _fields(int)


def test_the_configs_of_every_domain_are_covered():
    names = {cls.__name__ for cls, _ in FLOAT_FIELDS}
    for expected in (
        "SSFConfig",
        "LoRAConfig",
        "CoOpConfig",
        "SVDiffConfig",
        "TipAdapterFConfig",
        "ControlNetConfig",
    ):
        assert expected in names
    assert len(FLOAT_FIELDS) >= 20


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(("cls", "name"), FLOAT_FIELDS, ids=lambda v: getattr(v, "__name__", v))
def test_every_float_option_must_be_finite(cls, name, bad):
    is_list = typing.get_origin(typing.get_type_hints(cls)[name]) is list
    value, shown = ([1.0, bad], rf"{name}\[1\]") if is_list else (bad, name)
    with pytest.raises(ValueError, match=f"^{shown} must be a finite number, got {bad!r}"):
        cls(**{name: value})


@pytest.mark.parametrize(("cls", "name"), FLOAT_FIELDS + INT_FIELDS, ids=lambda v: getattr(v, "__name__", v))
def test_every_number_option_names_itself_and_its_type(cls, name):
    with pytest.raises(ValueError, match=f"^{name} must be (a number|an integer|a list of).*, got 'abc'"):
        cls.from_dict({name: "abc"})


def test_issue_examples():
    """The settings a bad-input tour trained with silently."""
    with pytest.raises(ValueError, match="init_std"):
        vision.SSFConfig(init_std=math.nan)
    with pytest.raises(ValueError, match="alpha"):
        vision.LoRAConfig(alpha=math.nan)
    with pytest.raises(ValueError, match="lr"):
        vlm.coop.CoOpConfig(lr=math.nan)
    with pytest.raises(ValueError, match=r"alpha_grid\[1\] must be a finite number"):
        vlm.tip_adapter.TipAdapterConfig(alpha_grid=[1.0, math.inf])
    with pytest.raises(ValueError, match="r must be an integer, got 2.5"):
        vision.LoRAConfig(r=2.5)
    with pytest.raises(ValueError, match="deep must be true or false, got 'yes'"):
        vision.VPTConfig(deep="yes")
    with pytest.raises(ValueError, match="modules_to_save must be a list of strings or None"):
        vision.SSFConfig(modules_to_save="head")
    with pytest.raises(ValueError, match=r"unknown SSFConfig fields \['bogus'\]"):
        vision.SSFConfig.from_dict({"bogus": 1})


def test_accepted_values_are_normalised():
    config = vision.LoRAConfig(r=4.0, alpha=2, target_modules=("qkv",))
    assert (config.r, config.alpha, config.target_modules) == (4, 2.0, ["qkv"])
    assert type(config.r) is int and type(config.alpha) is float
    assert vision.SSFConfig.from_dict(vision.SSFConfig(init_std=0.02).to_dict()) == vision.SSFConfig(
        init_std=0.02
    )


def test_conform_and_check_range_reject_nan():
    with pytest.raises(ValueError, match="x must be a finite number"):
        conform("x", math.nan, float | None)
    assert conform("x", None, float | None) is None
    with pytest.raises(ValueError, match="x must be in"):
        check_range("x", math.nan, 0.0)
