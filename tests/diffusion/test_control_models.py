"""Construction of the control models: exact base behaviour at initialisation, layouts and key formats."""

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel

from diffusion import ip_adapter
from diffusion.controlnet import ControlNetConfig, build_controlnet, controlnet_residuals
from diffusion.ip_adapter import IPAdapterConfig
from diffusion.t2i_adapter import (
    T2IAdapterConfig,
    adapter_residuals,
    build_t2i_adapter,
    residual_slots,
)
from studio.core import resolve_asset
from tests.diffusion.tiny import sample


def _inputs(pipe, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    unet = pipe.unet
    side = unet.config.sample_size
    noisy = torch.randn(batch, 4, side, side, generator=g)
    text = torch.randn(batch, 77, unet.config.cross_attention_dim, generator=g)
    condition = torch.rand(batch, 3, side * pipe.vae_scale_factor, side * pipe.vae_scale_factor, generator=g)
    return noisy, torch.tensor([10, 500]), text, condition


@torch.no_grad()
def test_controlnet_at_init_gives_exactly_the_base_unet_output(tiny_pipe):
    noisy, t, text, condition = _inputs(tiny_pipe)
    base = tiny_pipe.unet(noisy, t, encoder_hidden_states=text).sample
    controlnet = build_controlnet(tiny_pipe.unet, ControlNetConfig(), tiny_pipe.vae_scale_factor)
    residuals = controlnet_residuals(controlnet, noisy, t, {"encoder_hidden_states": text}, condition)
    assert all(r.abs().sum() == 0 for r in residuals["down_block_additional_residuals"])
    controlled = tiny_pipe.unet(noisy, t, encoder_hidden_states=text, **residuals).sample
    assert torch.equal(controlled, base)
    # Not an all-zero network: the copied encoder matches the UNet's, the condition encoder is random.
    assert torch.equal(controlnet.conv_in.weight, tiny_pipe.unet.conv_in.weight)
    assert controlnet.controlnet_cond_embedding.conv_in.weight.abs().sum() > 0


def test_controlnet_condition_encoder_downsamples_like_the_vae(tiny_pipe):
    controlnet = build_controlnet(tiny_pipe.unet, ControlNetConfig(), tiny_pipe.vae_scale_factor)
    noisy, t, text, condition = _inputs(tiny_pipe)
    with torch.no_grad():
        embedded = controlnet.controlnet_cond_embedding(condition)
    assert embedded.shape[-1] == noisy.shape[-1]
    with pytest.raises(ValueError, match="downsample"):
        build_controlnet(tiny_pipe.unet, ControlNetConfig(conditioning_embedding_out_channels=[8, 8, 8]), 2)


def test_t2i_adapter_features_fit_the_unet_and_change_its_output(tiny_pipe):
    adapter = build_t2i_adapter(tiny_pipe.unet, T2IAdapterConfig(), tiny_pipe.vae_scale_factor)
    assert adapter.config.adapter_type == "full_adapter"
    noisy, t, text, condition = _inputs(tiny_pipe)
    with torch.no_grad():
        base = tiny_pipe.unet(noisy, t, encoder_hidden_states=text).sample
        out = tiny_pipe.unet(
            noisy, t, encoder_hidden_states=text, **adapter_residuals(adapter, noisy, t, {}, condition)
        ).sample
        off = tiny_pipe.unet(
            noisy,
            t,
            encoder_hidden_states=text,
            **adapter_residuals(adapter, noisy, t, {}, condition, scale=0.0),
        ).sample
    assert not torch.allclose(out, base)
    assert torch.equal(off, base)


def test_t2i_adapter_layouts_follow_the_unet(tiny_pipe):
    sd15 = UNet2DConditionModel.load_config(
        resolve_asset("studio/shapes-sd") / "unet"
    )  # a real config format
    shapes = UNet2DConditionModel.from_config(sd15)
    # shapes-sd adds residuals after a downsampling plain block, then in a cross-attention block: XL layout.
    assert residual_slots(shapes) == [(2, 64), (2, 64)]
    assert build_t2i_adapter(shapes, T2IAdapterConfig(), 4).config.adapter_type == "full_adapter_xl"
    with pytest.raises(ValueError, match="layouts that fit: \\['full_adapter_xl'\\]"):
        build_t2i_adapter(shapes, T2IAdapterConfig(adapter_type="light_adapter"), 4)
    # The tiny UNet with equal widths, so the light layout's repeated last level fits.
    light_unet = UNet2DConditionModel.from_config({**tiny_pipe.unet.config, "block_out_channels": (16, 16)})
    light = build_t2i_adapter(light_unet, T2IAdapterConfig(adapter_type="light_adapter"), 2)
    features = light(torch.zeros(1, 3, 16, 16))
    assert [tuple(f.shape[1:]) for f in features] == [(16, 8, 8), (16, 4, 4)]


def test_ip_adapter_initial_state_follows_the_stock_key_layout(tiny_pipe):
    state = ip_adapter.initial_state_dict(tiny_pipe.unet, image_embed_dim=24)
    cross = [n for n in tiny_pipe.unet.attn_processors if n.endswith("attn2.processor")]
    assert sorted(state["ip_adapter"]) == sorted(
        f"{2 * i + 1}.{kv}_ip.weight" for i in range(len(cross)) for kv in ("to_k", "to_v")
    )
    first = tiny_pipe.unet.get_submodule(cross[0].removesuffix(".processor"))
    assert torch.equal(state["ip_adapter"]["1.to_k_ip.weight"], first.to_k.weight)
    assert torch.equal(state["ip_adapter"]["1.to_v_ip.weight"], first.to_v.weight)
    assert state["image_proj"]["proj.weight"].shape == (4 * 32, 24)


def test_ip_adapter_at_scale_zero_gives_the_base_images(tiny_pipe):
    base = sample(tiny_pipe)
    ip_adapter.install(tiny_pipe, [ip_adapter.initial_state_dict(tiny_pipe.unet, 24)])
    embeds = torch.randn(1, 1, 24)
    embeds = [torch.cat([torch.zeros_like(embeds), embeds])]
    tiny_pipe.set_ip_adapter_scale(0.0)
    assert np.array_equal(sample(tiny_pipe, ip_adapter_image_embeds=embeds), base)
    tiny_pipe.set_ip_adapter_scale(1.0)
    assert not np.array_equal(sample(tiny_pipe, ip_adapter_image_embeds=embeds), base)
    ip_adapter.uninstall(tiny_pipe)
    assert np.array_equal(sample(tiny_pipe), base)
    assert tiny_pipe.feature_extractor is None  # installing left the pipeline's other parts alone


@pytest.mark.parametrize(
    ("cls", "values", "match"),
    [
        (ControlNetConfig, {"lr": 0}, "lr"),
        (T2IAdapterConfig, {"adapter_type": "huge"}, "adapter_type"),
        (IPAdapterConfig, {"drop_text": 0.6, "drop_image": 0.6}, "<= 1"),
        (IPAdapterConfig, {"scale": -1}, "scale"),
    ],
)
def test_bad_config_values_are_rejected(cls, values, match):
    with pytest.raises(ValueError, match=match):
        cls(**values)


def test_configs_carry_help_texts():
    for cls in (ControlNetConfig, T2IAdapterConfig, IPAdapterConfig):
        assert all(text for text in cls.help().values()), cls


def test_image_encoders_from_open_clip_and_transformers(tmp_path):
    from PIL import Image
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from diffusion.control import load_image_encoder

    image = Image.new("RGB", (40, 30), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, 20, 30))  # left half blue: its mirror image is another picture
    bundled = load_image_encoder()  # studio/shapes-clip through open_clip
    assert bundled.spec == "studio/shapes-clip" and bundled([image]).shape == (1, bundled.embed_dim)
    config = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
        patch_size=8, projection_dim=24,
    )  # fmt: skip
    CLIPVisionModelWithProjection(config).save_pretrained(tmp_path / "clip")
    tower = load_image_encoder(tmp_path / "clip")
    embeds = tower([image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    assert tower.embed_dim == 24 and embeds.shape == (2, 24) and not torch.equal(embeds[0], embeds[1])
    with pytest.raises(FileNotFoundError, match="neither an open_clip folder"):
        load_image_encoder(tmp_path)
