"""Every registered vision method on a tiny ViT: identity at init, what trains, save/load, merge, disable."""

import pytest
import timm
import torch

import vision
from studio.core import (
    disable_adapters,
    get_adapter_state,
    inject,
    load_adapter,
    merge,
    method_configs,
    save_adapter,
    train_mode,
    unmerge,
)
from tests.conftest import TINY_VIT

METHODS = {name: cls() for name, cls in method_configs("vision").items()}
METHODS["vpt_shallow"] = vision.VPTConfig(deep=False, num_tokens=3)
IDENTITY_AT_INIT = {"adaptformer", "ssf", "lora", "bitfit", "linear_probe", "full"}
WITH_ADAPTER_LAYERS = {"vpt", "vpt_shallow", "adaptformer", "ssf", "lora"}
MERGEABLE = {"ssf", "lora"}
X = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _perturb_adapter(model):
    """Move adapter parameters off their init so that tests see a non-trivial adapter."""
    generator = torch.Generator().manual_seed(2)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in get_adapter_state(model).trainable:
            params[name].add_(0.1 * torch.randn(params[name].shape, generator=generator))


def _adapted(tiny_vit, name):
    return inject(tiny_vit(), METHODS[name]).eval()


@pytest.mark.parametrize("name", sorted(IDENTITY_AT_INIT))
def test_identity_at_init(tiny_vit, name):
    base = tiny_vit().eval()
    model = _adapted(tiny_vit, name)
    torch.testing.assert_close(model(X), base(X), atol=0, rtol=0)


def test_vpt_is_not_identity_but_keeps_output_shape(tiny_vit):
    base = tiny_vit().eval()
    model = _adapted(tiny_vit, "vpt")
    assert model(X).shape == base(X).shape
    assert model.forward_features(X).shape == base.forward_features(X).shape
    assert not torch.allclose(model(X), base(X))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_one_step_changes_only_adapter_and_head(tiny_vit, name):
    model = _adapted(tiny_vit, name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    train_mode(model)
    torch.nn.functional.cross_entropy(model(X), torch.tensor([0, 1, 2, 0])).backward()
    optimizer.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed <= trainable, changed - trainable
    assert "head.weight" in changed
    if name != "linear_probe":
        assert changed - {"head.weight", "head.bias"}, "no adapter parameter moved"
    for n, p in model.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, n


@pytest.mark.parametrize("name", sorted(METHODS))
def test_save_load_into_fresh_base_reproduces_outputs(tiny_vit, name, tmp_path):
    model = _adapted(tiny_vit, name)
    _perturb_adapter(model)
    save_adapter(model, tmp_path / "adapter")
    fresh = tiny_vit(seed=123)  # other random weights: only adapter + head come from the file
    if name != "full":
        fresh.load_state_dict(tiny_vit().state_dict())
    loaded = load_adapter(fresh, tmp_path / "adapter").eval()
    torch.testing.assert_close(loaded(X), model(X), atol=0, rtol=0)


@pytest.mark.parametrize("name", sorted(MERGEABLE))
def test_merge_equals_unmerged_and_unmerge_restores_base(tiny_vit, name):
    model = _adapted(tiny_vit, name)
    _perturb_adapter(model)
    base_weights = {k: v.clone() for k, v in model.state_dict().items()}
    expected = model(X)
    merge(model)
    torch.testing.assert_close(model(X), expected, atol=1e-5, rtol=1e-5)
    unmerge(model)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, base_weights[key], atol=1e-6, rtol=1e-6, msg=key)
    torch.testing.assert_close(model(X), expected, atol=1e-6, rtol=1e-6)


def test_merge_unload_gives_a_plain_timm_state_dict(tiny_vit):
    model = _adapted(tiny_vit, "ssf")
    _perturb_adapter(model)
    expected = model(X)
    plain = timm.create_model("vit_small_patch16_224", num_classes=3, **TINY_VIT).eval()  # timm's own class
    plain.load_state_dict(merge(model, unload=True).state_dict())  # strict: same keys as the base model
    torch.testing.assert_close(plain(X), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["vpt", "adaptformer"])
def test_non_mergeable_methods_say_why(tiny_vit, name):
    with pytest.raises(ValueError, match="cannot be merged: .+"):
        merge(_adapted(tiny_vit, name))


@pytest.mark.parametrize("name", sorted(WITH_ADAPTER_LAYERS))
def test_disabled_adapter_gives_base_output(tiny_vit, name):
    model = _adapted(tiny_vit, name)
    _perturb_adapter(model)
    base = tiny_vit().eval()
    base.head.load_state_dict(model.head.state_dict())
    with disable_adapters(model):
        torch.testing.assert_close(model(X), base(X), atol=0, rtol=0)
    assert not torch.allclose(model(X), base(X))


def test_disable_is_refused_for_in_place_methods(tiny_vit):
    with pytest.raises(ValueError, match="in place"), disable_adapters(_adapted(tiny_vit, "bitfit")):
        pass


def test_vpt_keeps_frozen_backbone_in_eval_mode(tiny_vit):
    model = inject(tiny_vit(proj_drop_rate=0.5), vision.VPTConfig(num_tokens=2))
    train_mode(model)
    assert model.blocks[0].training and not model.blocks[0].base_layer.training
    torch.testing.assert_close(model(X), model(X))  # no dropout in the frozen backbone
    ssf = inject(tiny_vit(proj_drop_rate=0.5), vision.SSFConfig())
    train_mode(ssf)
    assert not torch.allclose(ssf(X), ssf(X))  # SSF trains with the backbone's dropout, as its authors do


def test_vpt_respects_register_tokens(tiny_vit):
    base = tiny_vit(reg_tokens=2).eval()
    model = inject(tiny_vit(reg_tokens=2), vision.VPTConfig(num_tokens=3)).eval()
    assert model.blocks[0].prefix == 3
    assert model.forward_features(X).shape == base.forward_features(X).shape


@pytest.mark.parametrize("shape, scale_shape", [((4, 5, 6), (6,)), ((2, 6, 3, 3), (6, 1, 1))])
def test_ssf_memory_saving_backward_matches_autograd(shape, scale_shape):
    from vision.ssf.layer import _ScaleShiftFunction

    y = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    scale = (1 + 0.1 * torch.randn(scale_shape, dtype=torch.float64)).requires_grad_()
    shift = torch.randn(scale_shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_ScaleShiftFunction.apply, (y, scale, shift))


def test_lora_on_fused_qkv_changes_only_q_and_v():
    from studio.core import LoRALinear

    base = torch.nn.Linear(8, 24)
    layer = LoRALinear(base, r=2, alpha=2.0, dropout=0.0, num_slices=3, slices=(0, 2))
    torch.nn.init.normal_(layer.lora_B)
    x = torch.randn(5, 8)
    delta = (layer(x) - base(x)).view(5, 3, 8)
    assert delta[:, 1].abs().max() == 0
    assert delta[:, 0].abs().min() > 0 and delta[:, 2].abs().min() > 0
    expected_q = x @ layer.lora_A[0].T @ layer.lora_B[0].T
    torch.testing.assert_close(delta[:, 0], expected_q)
