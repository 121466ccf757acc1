"""Every vision method on tiny Swin, ConvNeXt, EVA and BEiT models: it works, or `inject` refuses it clearly."""

import pytest
import torch

import vision
from studio.core import (
    disable_adapters,
    get_adapter_state,
    inject,
    load_adapter,
    merge,
    method_configs,
    remove_adapter,
    save_adapter,
    train_mode,
)
from vision.adaptformer import AdaptFormerBlock

FAMILIES = {
    "convnext": ("convnext_tiny", {"depths": [1, 1, 1, 1], "dims": [8, 16, 32, 64], "ls_init_value": 1.0}),
    "swin": (
        "swin_tiny_patch4_window7_224",
        {"img_size": 32, "window_size": 4, "embed_dim": 16, "depths": [1, 1], "num_heads": [1, 2]},
    ),
    "eva": (
        "eva02_tiny_patch14_224",
        {"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32, "num_heads": 2},
    ),
    "beit": (
        "beit_base_patch16_224",
        {"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 32, "num_heads": 2},
    ),
}
CONFIGS = {
    "ssf": vision.SSFConfig,
    "lora": vision.LoRAConfig,
    "lora_mlp": lambda: vision.LoRAConfig(target_modules=["fc1", "fc2"]),
    "vpt_shallow": lambda: vision.VPTConfig(deep=False, num_tokens=3),
}
MERGEABLE = [
    ("convnext", "ssf"),
    ("convnext", "lora_mlp"),
    ("swin", "ssf"),
    ("swin", "lora"),
    ("eva", "ssf"),
    ("eva", "lora"),
    ("beit", "ssf"),
    ("beit", "lora"),
]
IDENTITY_AT_INIT = MERGEABLE + [(family, "adaptformer") for family in FAMILIES]
WORKS = IDENTITY_AT_INIT + [("eva", "vpt"), ("eva", "vpt_shallow"), ("swin", "vpt")]
# (family, method, class name in the message, what the message says is needed)
REFUSED = [
    ("convnext", "vpt", "ConvNeXt", "needs a token sequence"),
    ("convnext", "lora", "ConvNeXt", "target_modules=['fc1', 'fc2']"),
    ("swin", "vpt_shallow", "SwinTransformer", "VPTConfig(deep=True)"),
    ("beit", "vpt", "Beit", "relative position bias"),
]
X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _base(family, seed=0):
    name, kwargs = FAMILIES[family]
    torch.manual_seed(seed)
    # Through the `--timm-arg` allowlist, as the CLI and saved adapters pass them.
    return vision.create_model(name, num_classes=3, **vision.check_timm_args(kwargs)).eval()


def _config(method):
    return CONFIGS[method]() if method in CONFIGS else method_configs("vision")[method]()


def _perturbed(family, method):
    """An adapted model whose adapter has moved off its (identity) init."""
    model = inject(_base(family), _config(method)).eval()
    params = dict(model.named_parameters())
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name in get_adapter_state(model).trainable:
            params[name].add_(0.1 * torch.randn(params[name].shape, generator=generator))
    return model


@pytest.mark.parametrize("family, method", IDENTITY_AT_INIT)
def test_identity_at_init(family, method):
    model = inject(_base(family), _config(method)).eval()
    torch.testing.assert_close(model(X), _base(family)(X), atol=0, rtol=0)


@pytest.mark.parametrize("family, method", WORKS)
def test_one_step_changes_only_adapter_and_head(family, method):
    model = inject(_base(family), _config(method))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    state = get_adapter_state(model)
    heads = {f"{m}.{n}" for m in state.modules_to_save for n, _ in model.get_submodule(m).named_parameters()}
    assert trainable == set(state.trainable) | heads
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    train_mode(model)
    torch.nn.functional.cross_entropy(model(X), torch.tensor([0, 2])).backward()
    optimizer.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed <= trainable, changed - trainable
    assert heads & changed, "the head did not train"
    assert any(k.endswith(("scale", "lora_B", "up.weight", "prompts")) for k in changed), (
        "no adapter parameter moved"
    )


@pytest.mark.parametrize("family, method", WORKS)
def test_save_load_into_fresh_base_reproduces_outputs(family, method, tmp_path):
    model = _perturbed(family, method)
    save_adapter(model, tmp_path / "adapter")
    loaded = load_adapter(_base(family), tmp_path / "adapter").eval()
    torch.testing.assert_close(loaded(X), model(X), atol=0, rtol=0)


@pytest.mark.parametrize("family, method", MERGEABLE)
def test_merge_equals_unmerged(family, method):
    model = _perturbed(family, method)
    expected = model(X)
    assert not torch.allclose(expected, _base(family)(X))
    torch.testing.assert_close(merge(model)(X), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family, method, name, needed", REFUSED)
def test_unsupported_combinations_are_refused_at_inject(family, method, name, needed):
    with pytest.raises(ValueError, match=f"{name}.*|.*{name}") as err:
        inject(_base(family), _config(method))
    assert name in str(err.value) and needed in str(err.value)


def test_ssf_on_convnext_scales_channels_first_norms_per_channel():
    model = inject(_base("convnext"), vision.SSFConfig())
    norm = model.stem[1]  # timm's LayerNorm2d on NCHW
    with torch.no_grad():
        norm.scale.copy_(torch.arange(1.0, 9.0))
        norm.shift.fill_(0.5)
    x = torch.randn(2, 8, 4, 4)
    expected = norm.base_layer(x) * torch.arange(1.0, 9.0).view(-1, 1, 1) + 0.5
    torch.testing.assert_close(norm(x), expected)


def test_ssf_refuses_a_qkv_whose_weight_the_attention_reads_directly():
    with pytest.raises(ValueError, match="Eva: its attention reads qkv.weight directly"):
        inject(_base("eva"), vision.SSFConfig(target_modules=["qkv"]))


@pytest.mark.parametrize("method", ["vpt", "vpt_shallow"])
def test_vpt_on_eva_changes_outputs_and_disabling_restores_the_base(method):
    model = _perturbed("eva", method)
    base = _base("eva")
    base.head.load_state_dict(model.head.state_dict())
    assert not torch.allclose(model(X), base(X))
    with disable_adapters(model):  # the attention's prefix count is back to the class token alone
        torch.testing.assert_close(model(X), base(X), atol=0, rtol=0)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_adaptformer_branch_reads_the_stream_entering_the_mlp_step(family):
    model = _perturbed(family, "adaptformer")
    wrapped = next(m for m in model.modules() if isinstance(m, AdaptFormerBlock))
    block, seen = wrapped.base_layer, {}
    if wrapped.channels_first:  # ConvNeXt: the block's own NCHW input, per channel
        block.register_forward_pre_hook(lambda _, args: seen.setdefault("s", args[0].movedim(1, -1)))
    else:  # pre-norm blocks: the input of norm2, the residual stream after attention
        block.norm2.register_forward_pre_hook(lambda _, args: seen.setdefault("s", args[0]))
    outputs = {}
    wrapped.register_forward_hook(lambda _, args, out: outputs.setdefault("adapted", out))
    block.register_forward_hook(lambda _, args, out: outputs.setdefault("base", out))
    model(X)
    branch = wrapped.scale * wrapped.up(torch.relu(wrapped.down(seen["s"])))
    if wrapped.channels_first:
        branch = branch.movedim(-1, 1)
    assert branch.abs().max() > 0
    torch.testing.assert_close(outputs["adapted"], outputs["base"] + branch.reshape(outputs["base"].shape))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_removing_adaptformer_gives_back_the_block_as_it_was(family):
    model = _perturbed(family, "adaptformer")
    model(X)  # a forward: any hook it placed on the frozen block must be gone again
    remove_adapter(model)
    assert not any(isinstance(m, AdaptFormerBlock) for m in model.modules())
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())
    torch.testing.assert_close(model(X), _base(family)(X))
