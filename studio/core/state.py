"""What `inject` records on a model, and the adapter's tensors as a state dict."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import AdapterConfig

STATE_ATTR = "studio_adapter"


@dataclass
class AdapterState:
    """The adapter a model carries.

    Attributes:
        config: the method config that was injected.
        trainable: full names of the adapter's own parameters.
        modules_to_save: names of the modules trained and saved in full (e.g. the head).
    """

    config: AdapterConfig
    trainable: list[str]
    modules_to_save: list[str]

    def saved_names(self, model: nn.Module) -> list[str]:
        """Names of every tensor an adapter file holds: adapter parameters, then modules_to_save tensors."""
        names = list(self.trainable)
        seen = set(names)
        for prefix in self.modules_to_save:
            for name, _ in model.get_submodule(prefix).state_dict().items():
                full = f"{prefix}.{name}"
                if full not in seen:
                    names.append(full)
                    seen.add(full)
        return names


def get_adapter_state(model: nn.Module) -> AdapterState | None:
    """The adapter state `inject` attached to `model`, or None."""
    return getattr(model, STATE_ATTR, None)


def require_adapter_state(model: nn.Module) -> AdapterState:
    """Like `get_adapter_state`, but a model without an adapter is an error."""
    state = get_adapter_state(model)
    if state is None:
        raise ValueError(
            f"{type(model).__name__} has no adapter; call studio.core.inject(model, config) first"
        )
    return state


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors `save_adapter` writes: adapter parameters and the modules_to_save, detached."""
    state = require_adapter_state(model)
    full = model.state_dict(keep_vars=False)
    params = dict(model.named_parameters())
    out = {}
    for name in state.saved_names(model):
        tensor = params[name] if name in params else full[name]
        out[name] = tensor.detach()
    return out
