"""Control methods on an SDXL base (the tiny SDXL pipeline): one training step with the memory options on, the
artifact read fresh from disk by diffusers' own classes into its stock SDXL pipeline giving the images `generate`
gives, and the `studio` command training and sampling on an SDXL folder."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from diffusers import (
    ControlNetModel,
    StableDiffusionXLAdapterPipeline,
    StableDiffusionXLControlNetPipeline,
    StableDiffusionXLPipeline,
    T2IAdapter,
)
from PIL import Image
from safetensors.torch import load_file

import diffusion
from diffusion.architecture import Conditioning
from diffusion.ip_adapter import IPAdapterConfig, drop_conditions
from studio.core import resolve_asset
from studio.engine import Callback
from studio.world import Scene
from tests.diffusion.tiny import sample, write_control_pairs

PROMPT = "a red circle on a grey background"


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sdxl-pairs")
    write_control_pairs(
        folder, [Scene("circle", "red", background="grey"), Scene("square", "blue", background="grey")]
    )
    return folder


class Checkpointing(Callback):
    """Records at the first step whether the UNet recomputes its activations in backward."""

    def __init__(self, unet):
        self.unet, self.seen = unet, None

    def on_step_end(self, state):
        if self.seen is None:
            self.seen = self.unet.is_gradient_checkpointing


def _train(pipe, pairs, method, out):
    seen = Checkpointing(pipe.unet)
    art = diffusion.train_control(pipe, pairs, method=method, steps=1, batch_size=2, output_dir=out, memory="12",
                                  config={"lr": 1e-2}, callbacks=[seen], preview_every=1, preview_steps=1,
                                  progress=False)  # fmt: skip
    assert Image.open(out / "previews" / "step-000001.png").size[1] == 16  # sampled on SDXL while training
    return art, seen.seen


def _generate(pipe, adapters=(), **kw):
    (image,) = diffusion.generate(pipe, PROMPT, adapters=adapters, num_inference_steps=2, guidance_scale=3.0,
                                  seed=0, output_type="np", **kw)  # fmt: skip
    return image


def _stock(cls, folder, **modules):
    """A stock SDXL pipeline read fresh from the saved base folder: none of our loaders or objects."""
    stock = cls.from_pretrained(folder, local_files_only=True, **modules)
    stock.set_progress_bar_config(disable=True)
    return stock


# SDXL's layouts: a ControlNet with the pooled-text and size-id embedding, the XL adapter.
@pytest.mark.parametrize(("method", "stock_cls", "module_cls", "key", "layout"), [
    ("controlnet", StableDiffusionXLControlNetPipeline, ControlNetModel, "controlnet",
     ("addition_embed_type", "text_time")),
    ("t2i_adapter", StableDiffusionXLAdapterPipeline, T2IAdapter, "adapter", ("adapter_type", "full_adapter_xl")),
])  # fmt: skip
def test_a_condition_control_trains_on_sdxl_and_loads_in_the_stock_sdxl_pipeline(
    tiny_sdxl, tiny_sdxl_dir, pairs, tmp_path, method, stock_cls, module_cls, key, layout
):
    base = _generate(tiny_sdxl)
    art, seen = _train(tiny_sdxl, pairs, method, tmp_path / method)
    assert seen  # the memory options were on
    module = module_cls.from_pretrained(art, local_files_only=True)
    assert module.config[layout[0]] == layout[1]
    condition = Image.open(pairs / "conditions" / "000.png").convert("RGB")
    ours = _generate(tiny_sdxl, [art], control_image=condition)
    stock = _stock(stock_cls, tiny_sdxl_dir, **{key: module})
    np.testing.assert_array_equal(sample(stock, PROMPT, guidance_scale=3.0, image=condition), ours[None])
    assert np.abs(ours - base).max() > 1e-4
    np.testing.assert_array_equal(_generate(tiny_sdxl), base)  # training and sampling left the base as it was


def test_ip_adapter_trains_on_sdxl_and_loads_with_the_stock_loader(tiny_sdxl, tiny_sdxl_dir, pairs, tmp_path):
    base = _generate(tiny_sdxl)
    art, seen = _train(tiny_sdxl, pairs, "ip_adapter", tmp_path / "ip")
    assert seen
    state = load_file(art / "ip_adapter.safetensors")
    cross = tiny_sdxl.unet.config.cross_attention_dim  # both text encoders' widths: 4 image tokens of it
    assert (
        state["image_proj.proj.weight"].shape[0] == 4 * cross
        and state["ip_adapter.1.to_k_ip.weight"].shape[1] == cross
    )
    reference = pairs / "001.png"
    ours = _generate(tiny_sdxl, [art], ip_image=reference)
    assert tiny_sdxl.unet.encoder_hid_proj is None  # generate took it out again
    tower, _, preprocess = open_clip.create_model_and_transforms(
        f"local-dir:{resolve_asset('studio/shapes-clip')}"
    )
    with torch.no_grad():
        embeds = tower.eval().encode_image(preprocess(Image.open(reference).convert("RGB"))[None])[:, None]
    stock = _stock(StableDiffusionXLPipeline, tiny_sdxl_dir)
    stock.load_ip_adapter(art, subfolder="", weight_name="ip_adapter.safetensors", image_encoder_folder=None)
    stock_image = sample(stock, PROMPT, guidance_scale=3.0,
                         ip_adapter_image_embeds=[torch.cat([torch.zeros_like(embeds), embeds])])  # fmt: skip
    np.testing.assert_array_equal(stock_image, ours[None])
    assert np.abs(ours - base).max() > 1e-4
    np.testing.assert_array_equal(_generate(tiny_sdxl), base)


def test_the_studio_command_trains_and_samples_a_control_on_an_sdxl_folder(tiny_sdxl_dir, pairs, tmp_path):
    def studio(*args):
        command = [str(Path(sys.executable).with_name("studio")), "diffusion", *args]  # the console script
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)

    art, out = tmp_path / "art", tmp_path / "out"
    trained = studio("train-control", "--model", str(tiny_sdxl_dir), "--data", str(pairs), "--method", "t2i_adapter",
                     "--condition", "canny", "--steps", "1", "--batch-size", "2", "--gpu-memory", "12",
                     "--out", str(art))  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    sampled = studio("generate", "--model", str(tiny_sdxl_dir), "--prompt", PROMPT, "--adapter", str(art),
                     "--control-image", str(pairs / "000.png"), "--steps", "2", "--out", str(out))  # fmt: skip
    assert sampled.returncode == 0, sampled.stderr
    (image,) = out.glob("*.png")
    assert Image.open(image).size == (16, 16)


@pytest.mark.parametrize(("drop", "text_dropped", "image_dropped"), [
    ({"drop_text": 1.0, "drop_image": 0.0, "drop_both": 0.0}, True, False),
    ({"drop_text": 0.0, "drop_image": 1.0, "drop_both": 0.0}, False, True),
    ({"drop_text": 0.0, "drop_image": 0.0, "drop_both": 1.0}, True, True),
    ({"drop_text": 0.0, "drop_image": 0.0, "drop_both": 0.0}, False, False),
])  # fmt: skip
def test_ip_adapter_drops_sdxls_pooled_embedding_with_the_caption(drop, text_dropped, image_dropped):
    text = Conditioning(torch.randn(3, 5, 64), torch.randn(3, 32))
    empty = Conditioning(torch.randn(1, 5, 64), torch.randn(1, 32))
    embeds = torch.randn(3, 8)
    got, got_embeds = drop_conditions(text, embeds, empty, IPAdapterConfig(**drop))
    want = empty if text_dropped else text
    assert torch.equal(got.hidden, want.hidden.expand(3, -1, -1))
    assert torch.equal(got.pooled, want.pooled.expand(3, -1))
    assert torch.equal(got_embeds, torch.zeros_like(embeds) if image_dropped else embeds)
