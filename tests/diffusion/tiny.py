"""Helpers for the diffusion tests: tiny random Stable Diffusion and SDXL pipelines (16 px images, 8×8 latents)
built in code, random concept images, a seeded two-step sampler, a control-pair writer and a trained-looking Custom Diffusion.

The tokenizer is `studio/shapes-sd`'s (offline, whole-word tokens for the shape world's words).
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from PIL import Image
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from diffusion.custom_diffusion import CustomDiffusionConfig
from studio.core import adapter_layers, inject, resolve_asset
from studio.world import render_with_conditions


def _tokenizer() -> CLIPTokenizer:
    return CLIPTokenizer.from_pretrained(resolve_asset("studio/shapes-sd") / "tokenizer")


def _text_config(tokenizer: CLIPTokenizer, **extra) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def _vae() -> AutoencoderKL:
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
    )


def _scheduler(prediction_type: str = "epsilon") -> DDIMScheduler:
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        clip_sample=False,
        prediction_type=prediction_type,
    )


def build_tiny_pipeline(seed: int = 0, prediction_type: str = "epsilon") -> StableDiffusionPipeline:
    """SD 1.x architecture in miniature: cross-attention UNet, 2-level VAE, 2-layer CLIP text encoder
    (`prediction_type="v_prediction"` makes it SD 2.x-like)."""
    torch.manual_seed(seed)
    tokenizer = _tokenizer()
    text_encoder = CLIPTextModel(_text_config(tokenizer))
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    pipe = StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=_scheduler(prediction_type),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_tiny_sdxl_pipeline(seed: int = 0) -> StableDiffusionXLPipeline:
    """SDXL architecture in miniature: two text encoders (the second with a projection), a UNet that attends
    to both (32 + 32 channels) and takes the pooled embedding and size ids (`addition_embed_type="text_time"`)."""
    torch.manual_seed(seed)
    tokenizer = _tokenizer()
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        cross_attention_dim=64,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=6 * 8 + 32,
        norm_num_groups=8,
    )
    pipe = StableDiffusionXLPipeline(
        vae=_vae(),
        text_encoder=CLIPTextModel(_text_config(tokenizer)),
        text_encoder_2=CLIPTextModelWithProjection(_text_config(tokenizer, projection_dim=32)),
        tokenizer=tokenizer,
        tokenizer_2=_tokenizer(),
        unet=unet,
        scheduler=_scheduler(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def concept_images(n: int = 3, size: int = 20, seed: int = 0):
    """`n` small random RGB images (the content does not matter for mechanics tests)."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (size, size + 4, 3), dtype=np.uint8)) for _ in range(n)]


def sample(pipe, prompt="a red circle", seed=0, guidance_scale=4.0, output_type="np", **kwargs):
    """Two seeded DDIM steps from the stock pipeline call: a float array, or PIL images with `output_type="pil"`."""
    generator = torch.Generator().manual_seed(seed)
    out = pipe(
        prompt,
        num_inference_steps=2,
        guidance_scale=guidance_scale,
        generator=generator,
        output_type=output_type,
        **kwargs,
    )
    return out.images


def write_control_pairs(folder, scenes, size=16, seed=0, caption=None, conditions=True):
    """A control dataset folder: `NNN.png` renders of `scenes`, `conditions/NNN.png` masks and `NNN.txt` captions.

    Args:
        folder: where to write (created).
        scenes: `studio.world.Scene`s, one pair each.
        size: image size in pixels.
        seed: render seed of the first scene (the i-th scene uses `seed + i`).
        caption: `scene -> str`; None writes each render's own caption.
        conditions: False writes no `conditions/` folder.

    Returns:
        The renders (`render_with_conditions` results), in order.
    """
    (folder / "conditions" if conditions else folder).mkdir(parents=True, exist_ok=True)
    rendered = []
    for i, scene in enumerate(scenes):
        r = render_with_conditions(scene, size=size, seed=seed + i)
        r["image"].save(folder / f"{i:03d}.png")
        if conditions:
            r["mask"].save(folder / "conditions" / f"{i:03d}.png")
        (folder / f"{i:03d}.txt").write_text(r["caption"] if caption is None else caption(scene))
        rendered.append(r)
    return rendered


def trained_custom_diffusion(unet, config=None, seed=0):
    """`unet` with Custom Diffusion injected and its trained copies moved off the base weights (seeded)."""
    inject(unet, config or CustomDiffusionConfig())
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in adapter_layers(unet):
            layer.weight_copy.add_(torch.randn(layer.weight_copy.shape, generator=g) * 0.3)
    return unet.eval()
