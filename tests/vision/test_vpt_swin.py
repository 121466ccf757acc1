"""Deep VPT on Swin: prompts inside every windowed attention, as the VPT authors' Swin variant builds them."""

import pytest
import torch

import vision
from studio.core import disable_adapters, get_adapter_state, inject, load_adapter, save_adapter, train_mode
from vision.vpt.swin import PromptedWindowAttention

# Two blocks per stage: the second block of the first stage shifts its windows (8×8 tokens, window 4), so
# the shifted-window mask is exercised.
TINY = {"img_size": 32, "window_size": 4, "embed_dim": 16, "depths": [2, 2], "num_heads": [2, 4]}
X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _swin(seed=0, **kwargs):
    torch.manual_seed(seed)
    return vision.create_model("swin_tiny_patch4_window7_224", num_classes=3, **(kwargs or TINY)).eval()


def _authors_attention(wrapper: PromptedWindowAttention, x: torch.Tensor, mask) -> torch.Tensor:
    """The authors' formulation: attention over `[prompts, window]` with the bias and mask zero-padded for
    the prompts, computed for every token; the window tokens' outputs are returned."""
    attn, prompts = wrapper.base_layer, wrapper.prompts
    windows, n, c = x.shape
    p, heads = prompts.shape[1], attn.num_heads
    tokens = torch.cat([prompts.expand(windows, -1, -1), x], dim=1)
    q, k, v = attn.qkv(tokens).reshape(windows, p + n, 3, heads, -1).permute(2, 0, 3, 1, 4)
    logits = (q * attn.scale) @ k.transpose(-2, -1)
    bias = torch.zeros(heads, p + n, p + n)
    bias[:, p:, p:] = attn._get_rel_pos_bias()[0]
    logits = logits + bias
    if mask is not None:
        padded = torch.zeros(mask.shape[0], p + n, p + n)
        padded[:, p:, p:] = mask
        logits = (logits.view(-1, mask.shape[0], heads, p + n, p + n) + padded[None, :, None]).flatten(0, 1)
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(windows, p + n, -1)
    return attn.proj(out)[:, p:]


def test_every_window_attention_gets_its_own_prompts_of_its_stage_width():
    model = inject(_swin(), vision.VPTConfig(num_tokens=3))
    prompts = {n: p.shape for n, p in model.named_parameters() if n.endswith("prompts")}
    assert prompts == {
        "layers.0.blocks.0.attn.prompts": (1, 3, 16),
        "layers.0.blocks.1.attn.prompts": (1, 3, 16),
        "layers.1.blocks.0.attn.prompts": (1, 3, 32),
        "layers.1.blocks.1.attn.prompts": (1, 3, 32),
    }


@pytest.mark.parametrize("block", ["layers.0.blocks.0", "layers.0.blocks.1"])
def test_window_attention_equals_the_authors_prompted_attention(block):
    model = inject(_swin(), vision.VPTConfig(num_tokens=3))
    swin_block = model.get_submodule(block)
    mask = swin_block.attn_mask
    assert (mask is not None) == (block == "layers.0.blocks.1")  # the shifted block has a mask
    x = torch.randn(2 * 4, 16, 16, generator=torch.Generator().manual_seed(1))  # 2 images × 4 windows of 4×4
    with torch.no_grad():
        torch.testing.assert_close(
            swin_block.attn(x, mask=mask), _authors_attention(swin_block.attn, x, mask)
        )


def test_prompts_change_the_output_and_disabling_restores_the_base():
    model = inject(_swin(), vision.VPTConfig(num_tokens=3))
    assert not torch.allclose(model(X), _swin()(X))
    with disable_adapters(model):
        torch.testing.assert_close(model(X), _swin()(X), atol=0, rtol=0)


def test_swin_tiny_at_64_px_trains_only_prompts_and_head():
    model = inject(_swin(img_size=64), vision.VPTConfig(num_tokens=5))
    x = torch.randn(2, 3, 64, 64)
    assert model(x).shape == (2, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_mode(model)
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 2])).backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5).step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == set(get_adapter_state(model).trainable) | {"head.fc.weight", "head.fc.bias"}
    assert len([k for k in changed if k.endswith("prompts")]) == 12  # swin_tiny: 2 + 2 + 6 + 2 blocks


def test_save_load_into_a_fresh_base_reproduces_outputs(tmp_path):
    model = inject(_swin(), vision.VPTConfig(num_tokens=3))
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.1)
    save_adapter(model, tmp_path / "vpt")
    loaded = load_adapter(_swin(), tmp_path / "vpt").eval()
    torch.testing.assert_close(loaded(X), model(X), atol=0, rtol=0)


def test_shallow_prompts_on_swin_are_refused_at_inject():
    with pytest.raises(ValueError, match=r"VPT-shallow on SwinTransformer.*VPTConfig\(deep=True\)"):
        inject(_swin(), vision.VPTConfig(deep=False))
