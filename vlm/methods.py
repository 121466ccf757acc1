"""The few-shot CLIP methods by name: config class, fit and restore functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from studio.core import AdapterConfig

from . import coop, linear_probe, tip_adapter, zero_shot
from .base import ClipContext, Head, Support


@dataclass(frozen=True)
class FewShotMethod:
    """A few-shot method.

    Args:
        config_cls: its config dataclass (`config_cls.method` is the name).
        fit: `(ctx, support, config) -> Head`.
        restore: `(ctx, config, tensors, hparams) -> Head` for a saved head.
        augmented_views: `config -> number of augmented views the fit needs`.
        needs_support: whether the fit uses support images at all.
    """

    config_cls: type[AdapterConfig]
    fit: Callable[[ClipContext, Support, Any], Head]
    restore: Callable[[ClipContext, Any, dict[str, torch.Tensor], dict], Head]
    augmented_views: Callable[[Any], int] = lambda config: 0
    needs_support: bool = True

    @property
    def name(self) -> str:
        """The method's name."""
        return self.config_cls.method


def _views(config: tip_adapter.TipAdapterConfig) -> int:
    return config.augment_views


METHODS: dict[str, FewShotMethod] = {
    m.name: m
    for m in (
        FewShotMethod(zero_shot.ZeroShotConfig, zero_shot.fit, zero_shot.restore, needs_support=False),
        FewShotMethod(linear_probe.LinearProbeConfig, linear_probe.fit, linear_probe.restore),
        FewShotMethod(coop.CoOpConfig, coop.fit, coop.restore),
        FewShotMethod(tip_adapter.TipAdapterConfig, tip_adapter.fit, tip_adapter.restore, _views),
        FewShotMethod(tip_adapter.TipAdapterFConfig, tip_adapter.fit_f, tip_adapter.restore, _views),
    )
}


def get_method(name: str) -> FewShotMethod:
    """The method called `name`; an unknown name lists the known ones.

    Args:
        name: e.g. `"tip_adapter"`.
    """
    if name not in METHODS:
        raise ValueError(f"unknown few-shot method {name!r}; known methods: {', '.join(METHODS)}")
    return METHODS[name]


def make_config(name: str, options: dict[str, Any]) -> AdapterConfig:
    """The validated config of method `name` from keyword options; unknown options list the known ones.

    Args:
        name: the method's name.
        options: config field values.
    """
    config_cls = get_method(name).config_cls
    known = set(config_cls.help())
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for method {name!r}; its options: {sorted(known)}")
    return config_cls(**options)
