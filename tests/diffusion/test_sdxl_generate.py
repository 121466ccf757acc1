"""`generate` on an SDXL base: size conditioning as diffusers defines it, a Textual Inversion token composed with
a LoRA (and the clash of two layer-changing artifacts), and a Custom Diffusion artifact that stock diffusers'
own loaders read fresh from disk into a `StableDiffusionXLPipeline`, giving the images `generate` gives."""

import numpy as np
import pytest
from diffusers import StableDiffusionXLPipeline
from PIL import Image
from safetensors.torch import load_file

import diffusion
from diffusion.custom_diffusion import WEIGHTS_FILE, CustomDiffusionConfig, save_custom_diffusion
from studio.cli import main
from studio.core import adapter_layers
from tests.diffusion.tiny import build_tiny_pipeline, concept_images, sample, trained_custom_diffusion

SIZES = {"original_size": (8, 12), "crops_coords_top_left": (2, 0), "target_size": (16, 8)}


def _generate(pipe, prompt, adapters=(), **kwargs):
    (image,) = diffusion.generate(pipe, prompt, adapters=adapters, num_inference_steps=2, guidance_scale=4.0,
                                  seed=0, output_type="np", **kwargs)  # fmt: skip
    return image


def _stock(folder):
    pipe = StableDiffusionXLPipeline.from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _load_token(stock, folder, token):
    """The stock two-call load of an SDXL embedding file (`clip_l`, `clip_g`)."""
    state = load_file(folder / "learned_embeds.safetensors")
    stock.load_textual_inversion(state["clip_l"], token=token, text_encoder=stock.text_encoder,
                                 tokenizer=stock.tokenizer)  # fmt: skip
    stock.load_textual_inversion(state["clip_g"], token=token, text_encoder=stock.text_encoder_2,
                                 tokenizer=stock.tokenizer_2)  # fmt: skip


def test_size_conditioning_reaches_the_unet_as_in_the_stock_pipeline(tiny_sdxl):
    default = _generate(tiny_sdxl, "a red circle")
    np.testing.assert_array_equal(default[None], sample(tiny_sdxl, "a red circle"))  # diffusers' defaults
    conditioned = _generate(tiny_sdxl, "a red circle", **SIZES)
    np.testing.assert_array_equal(conditioned[None], sample(tiny_sdxl, "a red circle", **SIZES))
    assert np.abs(conditioned - default).max() > 1e-4  # the size ids changed the image
    with pytest.raises(
        ValueError, match=r"^crops_coords_top_left must be two whole numbers >= 0 .*\(-1, 0\)"
    ):
        _generate(tiny_sdxl, "a red circle", crops_coords_top_left=(-1, 0))
    with pytest.raises(
        ValueError, match=r"^original_size: SDXL's size conditioning, and this is an SD 1.x/2.x"
    ):
        _generate(build_tiny_pipeline(), "a red circle", original_size=(8, 8))


def test_a_token_composes_with_a_lora_as_in_stock_sdxl_and_two_layer_changers_clash(
    tiny_sdxl, tiny_sdxl_dir, tmp_path
):
    common = {"steps": 1, "batch_size": 2, "progress": False}
    ti = diffusion.personalize(tiny_sdxl, concept_images(2), token="<blob>", init_token="circle", lr=0.5,
                               output_dir=tmp_path / "ti", **common)  # fmt: skip
    lora = diffusion.personalize(tiny_sdxl, concept_images(2), "lora", token="<r>", output_dir=tmp_path / "lora",
                                 config={"r": 2, "lr": 0.05}, **common)  # fmt: skip
    prompt = "a <blob> on grass"
    ours = _generate(tiny_sdxl, prompt, [ti, lora])
    stock = _stock(tiny_sdxl_dir)
    _load_token(stock, ti, "<blob>")
    stock.load_lora_weights(lora)
    np.testing.assert_allclose(sample(stock, prompt), ours[None], atol=1e-5)
    assert np.abs(ours - _generate(tiny_sdxl, prompt, [ti])).max() > 1e-4  # the LoRA took part
    cd = tmp_path / "cd"
    save_custom_diffusion(trained_custom_diffusion(tiny_sdxl.unet, CustomDiffusionConfig()), cd)
    with pytest.raises(
        ValueError, match=r"\(lora\) and .*\(custom_diffusion\) both change the pipeline's layers"
    ):
        diffusion.generate(tiny_sdxl, prompt, adapters=[lora, cd], num_inference_steps=1)


@pytest.mark.parametrize("train_q_out", [False, True])
def test_custom_diffusion_loads_fresh_in_stock_sdxl_with_its_token_on_both_encoders(
    tiny_sdxl, tiny_sdxl_dir, tmp_path, train_q_out
):
    """Stock diffusers reads the projections with `load_attn_procs` (the output projection's bias included,
    which its processor requires) and the modifier token with one `load_textual_inversion` per encoder."""
    art = diffusion.personalize(tiny_sdxl, concept_images(2), "custom_diffusion", token="<v1>", class_word="circle",
                                steps=2, batch_size=2, output_dir=tmp_path / "cd", progress=False,
                                config={"lr": 0.05, "train_q_out": train_q_out})  # fmt: skip
    stock = _stock(tiny_sdxl_dir)
    stock.unet.load_attn_procs(art, weight_name=WEIGHTS_FILE, _pipeline=stock)
    assert {type(p).__name__ for p in stock.unet.attn_processors.values()} == {"CustomDiffusionAttnProcessor"}
    _load_token(stock, art, "<v1>")
    prompt = "a <v1> circle"
    ours = _generate(tiny_sdxl, prompt, [art])
    np.testing.assert_allclose(sample(stock, prompt), ours[None], atol=1e-5)
    assert np.abs(ours - sample(tiny_sdxl, prompt)[0]).max() > 1e-3
    assert not adapter_layers(tiny_sdxl.unet) and "<v1>" not in tiny_sdxl.tokenizer_2.get_vocab()  # restored


def test_the_cli_samples_sdxl_at_a_size_with_size_conditioning(tiny_sdxl_dir, tiny_sd_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["diffusion", "generate", "--model", str(tiny_sdxl_dir), "--prompt", "a red circle", "--steps", "1",
                 "--height", "24", "--width", "32", "--original-size", "48", "64", "--crops-coords-top-left", "0", "8",
                 "--out", str(out)])  # fmt: skip
    (png,) = out.glob("*.png")
    assert code == 0 and Image.open(png).size == (32, 24)
    (same,) = diffusion.generate(diffusion.load_pipeline(tiny_sdxl_dir), "a red circle", num_inference_steps=1,
                                 height=24, width=32, original_size=(48, 64), crops_coords_top_left=(0, 8))  # fmt: skip
    np.testing.assert_array_equal(np.asarray(Image.open(png)), np.asarray(same))  # the sizes reached the UNet
    code = main(["diffusion", "generate", "--model", str(tiny_sd_dir), "--prompt", "a red circle", "--steps", "1",
                 "--original-size", "48", "64", "--out", str(out)])  # fmt: skip
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the loaders' progress bars
    assert code == 2 and last.startswith(
        "studio: error: --original-size: SDXL's size conditioning, and this is"
    )
