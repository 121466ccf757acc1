"""Our vision LoRA equals peft's LoRA on the same weights: same base, same A and B, same outputs."""

import peft
import pytest
import torch

import vision
from studio.core import LoRALinear, inject

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _ours(tiny_vit, **options):
    model = inject(tiny_vit(), vision.LoRAConfig(r=2, alpha=4.0, **options)).eval()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoRALinear):  # B starts at zero: give it values so the update shows
                module.lora_B.copy_(torch.randn(module.lora_B.shape, generator=generator))
    return model


def _peft(tiny_vit, target: str, r: int, alpha: float):
    config = peft.LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=[target], init_lora_weights=False
    )
    return peft.get_peft_model(tiny_vit(), config).eval()


def _peft_layers(model, target):
    return {n.removeprefix("base_model.model."): m for n, m in model.named_modules() if n.endswith(target)
            and hasattr(m, "lora_A")}  # fmt: skip


def test_lora_on_plain_linears_equals_peft(tiny_vit):
    ours = _ours(tiny_vit, target_modules=["fc1"])
    theirs = _peft(tiny_vit, "fc1", r=2, alpha=4.0)
    layers = _peft_layers(theirs, "fc1")
    assert set(layers) == {n for n, m in ours.named_modules() if isinstance(m, LoRALinear)}
    with torch.no_grad():
        for name, layer in layers.items():
            mine = ours.get_submodule(name)
            layer.lora_A["default"].weight.copy_(mine.lora_A[0])
            layer.lora_B["default"].weight.copy_(mine.lora_B[0])
        torch.testing.assert_close(ours(X), theirs(X), atol=1e-6, rtol=1e-5)
        assert not torch.allclose(ours(X), tiny_vit().eval()(X), atol=1e-3)  # the update is not zero


@pytest.mark.parametrize("parts", ["qv", "qkv"])
def test_lora_on_fused_qkv_equals_peft_with_block_diagonal_factors(tiny_vit, parts):
    """Our per-slice updates of q/k/v are one peft LoRA of rank 2·len(parts) with block-diagonal B."""
    ours = _ours(tiny_vit, qkv_parts=parts)
    k = len(parts)
    theirs = _peft(tiny_vit, "qkv", r=2 * k, alpha=4.0 * k)  # same scaling: alpha / r
    with torch.no_grad():
        for name, layer in _peft_layers(theirs, "qkv").items():
            mine = ours.get_submodule(name)
            width = mine.base_layer.in_features
            b = torch.zeros(3 * width, 2 * k)
            for i, part in enumerate(sorted(parts, key="qkv".index)):
                s = "qkv".index(part)
                b[s * width : (s + 1) * width, 2 * i : 2 * i + 2] = mine.lora_B[i]
            layer.lora_A["default"].weight.copy_(mine.lora_A.reshape(2 * k, width))
            layer.lora_B["default"].weight.copy_(b)
        torch.testing.assert_close(ours(X), theirs(X), atol=1e-6, rtol=1e-5)
