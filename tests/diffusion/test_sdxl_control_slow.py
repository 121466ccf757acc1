"""Control methods on the real SDXL architecture (diffusers' SDXL base configs, random weights, 64 px, frozen
weights in bf16): one training step with the memory options, the artifact loaded by diffusers' own classes into
the stock SDXL pipeline, one sampling step identical to `generate`'s.

About 8 GB of memory and a few CPU-minutes per method; the ControlNet (a trainable copy of the 2.6B-parameter
UNet's encoder, with its gradients and AdamW moments in fp32) needs about 30 GB."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState
from diffusers import (
    AutoencoderKL,
    ControlNetModel,
    DDIMScheduler,
    StableDiffusionXLAdapterPipeline,
    StableDiffusionXLControlNetPipeline,
    StableDiffusionXLPipeline,
    T2IAdapter,
    UNet2DConditionModel,
)
from PIL import Image
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

import diffusion
from diffusion.control import load_image_encoder
from studio.core import resolve_asset
from studio.world import Scene
from tests.diffusion.tiny import write_control_pairs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from diffusion_memory import CLIP_G, CLIP_L, SDXL_UNET, VAE  # noqa: E402  (the real architectures' configs)

pytestmark = pytest.mark.slow
PROMPT = "a red circle on a grey background"
SIDE = 64
MEMORY_GIB = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
CONTROLNET = pytest.param(
    "controlnet",
    marks=pytest.mark.skipif(
        MEMORY_GIB < 32, reason=f"the SDXL ControlNet step needs ~30 GB; {MEMORY_GIB:.0f} GiB here"
    ),
)


@pytest.fixture(scope="module")
def real_sdxl():
    """The SDXL base architecture at 64 px (UNet sample size 8), random weights in bf16, offline tokenizer."""
    tokenizer = CLIPTokenizer.from_pretrained(resolve_asset("studio/shapes-sd") / "tokenizer")
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id}  # fmt: skip
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)  # built in bf16: the fp32 models would not fit beside each other
    try:
        pipe = StableDiffusionXLPipeline(
            vae=AutoencoderKL(**VAE),
            text_encoder=CLIPTextModel(CLIPTextConfig(**CLIP_L, **ids)),
            text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_G, **ids)),
            tokenizer=tokenizer,
            tokenizer_2=tokenizer,
            unet=UNet2DConditionModel(**{**SDXL_UNET, "sample_size": SIDE // 8}),
            scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
        )
    finally:
        torch.set_default_dtype(torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real-sdxl-pairs")
    write_control_pairs(folder, [Scene("circle", "red", background="grey")], size=SIDE)
    return folder


@pytest.fixture
def bf16_run():
    """accelerate fixes a process's mixed precision at its first `Accelerator`; bf16 needs a fresh state."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def _one_step(pipe, **kw):
    generator = torch.Generator().manual_seed(0)
    return pipe(
        PROMPT, num_inference_steps=1, guidance_scale=3.0, generator=generator, output_type="np", **kw
    ).images


def _stock_pipeline(cls, pipe, **modules):
    stock = cls(**{k: v for k, v in pipe.components.items() if k not in ("image_encoder", "feature_extractor")},
                **modules)  # fmt: skip
    stock.set_progress_bar_config(disable=True)
    return stock


@pytest.mark.parametrize("method", [CONTROLNET, "t2i_adapter", "ip_adapter"])
def test_a_control_trains_on_the_real_sdxl_architecture_and_samples_as_stock_diffusers_does(
    real_sdxl, pairs, tmp_path, bf16_run, method
):
    art = diffusion.train_control(real_sdxl, pairs, method=method, steps=1, batch_size=1, flip=False,
                                  output_dir=tmp_path / method, memory="12", mixed_precision="bf16",
                                  progress=False)  # fmt: skip
    generate = {"num_inference_steps": 1, "guidance_scale": 3.0, "seed": 0, "output_type": "np"}
    if method == "ip_adapter":
        reference = pairs / "000.png"
        (ours,) = diffusion.generate(real_sdxl, PROMPT, adapters=[art], ip_image=reference, **generate)
        embeds = load_image_encoder()([Image.open(reference).convert("RGB")])[:, None].to(torch.bfloat16)
        stock = _stock_pipeline(StableDiffusionXLPipeline, real_sdxl)
        stock.load_ip_adapter(
            art, subfolder="", weight_name="ip_adapter.safetensors", image_encoder_folder=None
        )
        try:
            theirs = _one_step(stock, ip_adapter_image_embeds=[torch.cat([torch.zeros_like(embeds), embeds])])
        finally:
            stock.unload_ip_adapter()
    else:
        condition = Image.open(pairs / "conditions" / "000.png").convert("RGB")
        (ours,) = diffusion.generate(real_sdxl, PROMPT, adapters=[art], control_image=condition, **generate)
        cls, module_cls, key = {
            "controlnet": (StableDiffusionXLControlNetPipeline, ControlNetModel, "controlnet"),
            "t2i_adapter": (StableDiffusionXLAdapterPipeline, T2IAdapter, "adapter"),
        }[method]
        module = module_cls.from_pretrained(art, local_files_only=True, torch_dtype=torch.bfloat16)
        theirs = _one_step(_stock_pipeline(cls, real_sdxl, **{key: module}), image=condition)
    assert ours.shape == (SIDE, SIDE, 3) and np.isfinite(ours).all()
    np.testing.assert_array_equal(theirs, ours[None])
