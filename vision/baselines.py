"""The baselines the PEFT methods are compared against: linear probe, full fine-tuning and BitFit."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from studio.core import AdapterConfig, register_method

_IN_PLACE = "it trains the base weights themselves; the saved tensors already are the model"


@dataclass
class LinearProbeConfig(AdapterConfig):
    """Linear probe: the backbone is frozen and only the head (modules_to_save) trains."""

    method = "linear_probe"
    merge_unsupported = _IN_PLACE


@dataclass
class FullFinetuneConfig(AdapterConfig):
    """Full fine-tuning: every parameter trains and is saved."""

    method = "full"
    merge_unsupported = _IN_PLACE


@dataclass
class BitFitConfig(AdapterConfig):
    """BitFit (Ben Zaken et al., 2022): only the bias terms (and the head) train."""

    method = "bitfit"
    merge_unsupported = _IN_PLACE


def _no_change(model: nn.Module, config: AdapterConfig) -> None:
    """These baselines add no modules; `inject` only sets what trains."""


register_method(
    LinearProbeConfig, _no_change, trainable=lambda model, config: [], domain="vision", task="finetune"
)
register_method(
    FullFinetuneConfig,
    _no_change,
    trainable=lambda model, config: [n for n, _ in model.named_parameters()],
    domain="vision",
    task="finetune",
)
register_method(
    BitFitConfig,
    _no_change,
    trainable=lambda model, config: [
        n for n, _ in model.named_parameters() if n.rsplit(".", 1)[-1] == "bias"
    ],
    domain="vision",
    task="finetune",
)
