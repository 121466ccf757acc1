"""`diffusion.unload.frozen`: freezing for a block gives each parameter back its own `requires_grad`."""

import pytest
from torch import nn

from diffusion.unload import frozen


def _mixed() -> nn.Module:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[0].bias.requires_grad_(False)
    return model


def _flags(model: nn.Module) -> dict[str, bool]:
    return {name: p.requires_grad for name, p in model.named_parameters()}


def test_frozen_freezes_inside_and_restores_a_mixed_state():
    first, second = _mixed(), _mixed()
    before = _flags(first)
    assert set(before.values()) == {True, False}
    with frozen(first, second):
        assert not any(p.requires_grad for m in (first, second) for p in m.parameters())
    assert _flags(first) == before and _flags(second) == before


def test_frozen_restores_after_an_error():
    model = _mixed()
    before = _flags(model)
    with pytest.raises(RuntimeError, match="boom"), frozen(model):
        raise RuntimeError("boom")
    assert _flags(model) == before
