"""`remove_adapter` takes an injected adapter back out: the model is again the one before `inject`."""

import torch

import vision
from studio.core import get_adapter_state, inject, merge, remove_adapter


def _randomise(model):
    # SSF starts as the identity; non-trivial shifts make a left-over adapter visible in the outputs.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith((".scale", ".shift")):
                param.add_(torch.randn_like(param) * 0.1)


def test_remove_restores_modules_and_outputs(tiny_vit):
    model = tiny_vit()
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    before_keys, before = list(model.state_dict()), model(x)
    inject(model, vision.SSFConfig())
    _randomise(model)
    assert not torch.allclose(model(x), before)
    assert remove_adapter(model) is model
    assert get_adapter_state(model) is None
    assert list(model.state_dict()) == before_keys
    torch.testing.assert_close(model(x), before)


def test_remove_unmerges_a_merged_adapter_first(tiny_vit):
    model = tiny_vit()
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    before = model(x)
    inject(model, vision.SSFConfig())
    _randomise(model)
    merge(model)
    remove_adapter(model)
    torch.testing.assert_close(model(x), before, atol=1e-5, rtol=1e-5)
