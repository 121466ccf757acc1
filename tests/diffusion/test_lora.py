"""Diffusion LoRA: zero B is the base pipeline, merge equals unmerged, both file layouts load in stock diffusers
with the same images as ours, `generate` applies a LoRA and leaves the pipeline as it was, and foreign or
mismatched files get clear errors."""

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from safetensors.torch import load_file, save_file

import diffusion
from diffusion.artifacts import read_artifact
from diffusion.lora import KOHYA_FILE, LORA_FILE, DiffusionLoRAConfig, save_lora, text_encoder_config
from diffusion.textual_inversion import save_embeddings
from diffusion.unload import remove_adapter, requires_grad_flags
from studio.core import LoRALinear, adapter_layers, inject, merge, unmerge
from tests.diffusion.tiny import sample


def _unet_out(unet, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, ctx = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 5, 32, generator=g)
    with torch.no_grad():
        return unet(x, torch.tensor([10, 500]), encoder_hidden_states=ctx).sample


def _trained(pipe, config=None, seed=0):
    """Inject LoRA into the UNet and text encoder and give every B values, as training would."""
    config = config or DiffusionLoRAConfig(r=2, alpha=4.0, train_text_encoder=True)
    inject(pipe.unet, config)
    inject(pipe.text_encoder, text_encoder_config(config))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for model in (pipe.unet, pipe.text_encoder):
            for _, layer in adapter_layers(model):
                layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.3)
    return pipe


def test_zero_b_equals_the_base_and_merge_equals_unmerged(tiny_pipe):
    unet = tiny_pipe.unet
    base, flags = _unet_out(unet), requires_grad_flags(unet)
    inject(unet, DiffusionLoRAConfig())
    names = [n for n, layer in adapter_layers(unet) if isinstance(layer, LoRALinear)]
    assert names and all(n.rsplit(".", 1)[-1] in ("to_q", "to_k", "to_v", "0") for n in names)
    assert torch.equal(_unet_out(unet), base)
    trainable = {n for n, p in unet.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n for n in trainable)
    with torch.no_grad():
        for _, layer in adapter_layers(unet):
            layer.lora_B.normal_(0, 0.3)
    adapted = _unet_out(unet)
    assert not torch.allclose(adapted, base, atol=1e-3)
    merge(unet)
    assert torch.allclose(_unet_out(unet), adapted, atol=1e-5)
    unmerge(unet)  # W + BA - BA: the base weights again, up to float round-off
    assert torch.allclose(_unet_out(unet), adapted, atol=1e-5)
    remove_adapter(unet, flags)
    assert torch.allclose(_unet_out(unet), base, atol=1e-6)


@pytest.mark.parametrize("weight_name", [LORA_FILE, KOHYA_FILE])
def test_both_layouts_load_in_stock_diffusers_with_our_images(tiny_pipe, tiny_sd_dir, tmp_path, weight_name):
    ours = sample(_trained(tiny_pipe))
    save_lora(tiny_pipe, tmp_path / "lora")
    stock = StableDiffusionPipeline.from_pretrained(
        tiny_sd_dir, safety_checker=None, requires_safety_checker=False
    )
    stock.set_progress_bar_config(disable=True)
    base = sample(stock)
    stock.load_lora_weights(tmp_path / "lora", weight_name=weight_name)
    theirs = sample(stock)
    assert np.abs(ours - base).max() > 1e-3  # the LoRA changes the images ...
    np.testing.assert_allclose(theirs, ours, atol=1e-5)  # ... and stock diffusers reads it as we wrote it


def test_generate_applies_a_lora_and_restores_the_pipeline(tiny_pipe, tiny_sd_dir, tmp_path):
    fresh = diffusion.load_pipeline(str(tiny_sd_dir), disable_progress_bar=True)
    base = sample(fresh)
    ours = sample(_trained(tiny_pipe))
    save_lora(tiny_pipe, tmp_path / "lora")
    assert read_artifact(tmp_path / "lora").kind == "lora"
    assert read_artifact(tmp_path / "lora" / KOHYA_FILE).kind == "lora"  # a bare kohya file, as downloaded
    for artifact in (tmp_path / "lora", tmp_path / "lora" / KOHYA_FILE):
        (image,) = diffusion.generate(fresh, "a red circle", adapters=[artifact], num_inference_steps=2,
                                      guidance_scale=4.0, seed=0, output_type="np")  # fmt: skip
        np.testing.assert_allclose(image, ours[0], atol=1e-5)
    assert not adapter_layers(fresh.unet) and not adapter_layers(fresh.text_encoder)
    np.testing.assert_array_equal(sample(fresh), base)


def test_the_merged_unet_export_loads_as_a_stock_unet(tiny_pipe, tmp_path):
    _trained(tiny_pipe, DiffusionLoRAConfig(r=2))
    adapted = _unet_out(tiny_pipe.unet)
    save_lora(tiny_pipe, tmp_path / "lora")
    flags = requires_grad_flags(tiny_pipe.unet)
    remove_adapter(tiny_pipe.unet, flags)
    diffusion.export_merged_unet(tiny_pipe, tmp_path / "lora", tmp_path / "unet")
    merged = UNet2DConditionModel.from_pretrained(tmp_path / "unet")
    assert torch.allclose(_unet_out(merged), adapted, atol=1e-5)
    save_embeddings(tmp_path / "ti", "<x>", torch.randn(1, 32))
    with pytest.raises(
        ValueError, match="textual_inversion artifact, which has no merged-UNet export.*load_textual"
    ):
        diffusion.export_merged_unet(tiny_pipe, tmp_path / "ti", tmp_path / "unet2")
    with pytest.raises(ValueError, match="lora artifact, which stock diffusers loads as it is: .*load_lora"):
        diffusion.export_merged_components(tiny_pipe, tmp_path / "lora", tmp_path / "merged")


def test_bad_inputs_get_clear_errors(tiny_pipe, tmp_path):
    with pytest.raises(ValueError, match=r"^r must be in \[1, inf\], got 0"):
        DiffusionLoRAConfig(r=0)
    with pytest.raises(ValueError, match="no LoRA layers to save"):
        save_lora(tiny_pipe, tmp_path / "none")
    _trained(tiny_pipe)
    save_lora(tiny_pipe, tmp_path / "lora")
    tensors = load_file(tmp_path / "lora" / LORA_FILE)
    key = next(k for k in tensors if k.startswith("unet."))
    foreign = {key.replace("down_blocks.0", "down_blocks.7"): tensors[key]}  # a module this UNet lacks
    save_file(foreign, tmp_path / "other.safetensors")
    remove_adapter(tiny_pipe.unet)
    remove_adapter(tiny_pipe.text_encoder)
    with pytest.raises(ValueError, match="has no linear layer .*down_blocks.7.*another model"):
        diffusion.generate(
            tiny_pipe, "a red circle", adapters=[tmp_path / "other.safetensors"], num_inference_steps=1
        )
    save_file(
        {"unet.foo.weight": torch.zeros(1), "unet.bar.weight": torch.zeros(1)}, tmp_path / "odd.safetensors"
    )
    with pytest.raises(ValueError, match="not a known artifact"):
        read_artifact(tmp_path / "odd.safetensors")
