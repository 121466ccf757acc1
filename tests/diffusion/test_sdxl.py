"""SDXL (and SD 2.x v-prediction) bases: `load_pipeline` picks the pipeline class from the folder, our prompt
conditioning is the SDXL pipeline's, and every personalization method trains on the tiny SDXL pipeline, with
the artifacts loading in stock diffusers (Textual Inversion's `clip_l` / `clip_g`, LoRA in both layouts) to
give the images `generate` gives."""

import json
import shutil

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionXLPipeline
from safetensors.torch import load_file

import diffusion
from diffusion.architecture import SDXL, architecture_of
from diffusion.artifacts import read_artifact
from diffusion.denoise import training_scheduler
from diffusion.lora import KOHYA_FILE, LORA_FILE
from studio.cli import main
from tests.diffusion.tiny import build_tiny_pipeline, concept_images, sample

PROMPT = "a <r> circle"


def _generate(pipe, prompt, adapters=()):
    (image,) = diffusion.generate(pipe, prompt, adapters=adapters, num_inference_steps=2, guidance_scale=4.0,
                                  seed=0, output_type="np")  # fmt: skip
    return image


def _stock(folder):
    pipe = StableDiffusionXLPipeline.from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_load_pipeline_takes_the_class_from_model_index(tiny_sdxl_dir, tmp_path):
    pipe = diffusion.load_pipeline(tiny_sdxl_dir)
    assert isinstance(pipe, StableDiffusionXLPipeline) and architecture_of(pipe) is SDXL
    other = tmp_path / "other"
    shutil.copytree(tiny_sdxl_dir, other)
    index = json.loads((other / "model_index.json").read_text())
    (other / "model_index.json").write_text(json.dumps({**index, "_class_name": "FluxPipeline"}))
    with pytest.raises(ValueError, match="FluxPipeline.*StableDiffusionXLPipeline"):
        diffusion.load_pipeline(other)


def test_an_sd2_v_prediction_folder_trains_on_velocity(tmp_path):
    build_tiny_pipeline(prediction_type="v_prediction").save_pretrained(tmp_path / "sd2")
    pipe = diffusion.load_pipeline(tmp_path / "sd2")
    assert training_scheduler(pipe).config.prediction_type == "v_prediction"


def test_conditioning_is_the_sdxl_pipelines(tiny_sdxl):
    prompts = ["a red circle", "a blue square"]
    ours = SDXL.encode(SDXL.encoders(tiny_sdxl), SDXL.token_ids(SDXL.tokenizers(tiny_sdxl), prompts))
    with torch.no_grad():
        embeds, _, pooled, _ = tiny_sdxl.encode_prompt(prompts, do_classifier_free_guidance=False)
    assert torch.equal(ours.hidden, embeds) and torch.equal(ours.pooled, pooled)
    kwargs = SDXL.unet_kwargs(ours, 16, 16)
    assert kwargs["added_cond_kwargs"]["time_ids"].tolist() == [[16, 16, 0, 0, 16, 16]] * 2


def test_textual_inversion_on_both_encoders_loads_in_stock_sdxl(tiny_sdxl_dir, tiny_sdxl, tmp_path):
    art = diffusion.personalize(tiny_sdxl, concept_images(2), token="<blob>", init_token="circle", steps=1,
                                batch_size=2, lr=0.5, output_dir=tmp_path / "ti", progress=False)  # fmt: skip
    state = load_file(art / "learned_embeds.safetensors")
    assert sorted(state) == ["clip_g", "clip_l"] and state["clip_l"].shape == state["clip_g"].shape == (1, 32)
    ours = _generate(tiny_sdxl, "a <blob> on grass", [art])
    stock = _stock(tiny_sdxl_dir)
    stock.load_textual_inversion(state["clip_l"], token="<blob>", text_encoder=stock.text_encoder,
                                 tokenizer=stock.tokenizer)  # fmt: skip
    stock.load_textual_inversion(state["clip_g"], token="<blob>", text_encoder=stock.text_encoder_2,
                                 tokenizer=stock.tokenizer_2)  # fmt: skip
    np.testing.assert_array_equal(sample(stock, "a <blob> on grass"), ours[None])
    assert len(tiny_sdxl.tokenizer) == len(tiny_sdxl.tokenizer_2) == len(stock.tokenizer) - 1  # unloaded
    with pytest.raises(ValueError, match="SDXL embedding and the pipeline is SD 1.x/2.x"):
        diffusion.generate(build_tiny_pipeline(), "a <blob>", adapters=[art], check_base_model=False)


@pytest.mark.parametrize("layout", [LORA_FILE, KOHYA_FILE])
def test_lora_with_both_text_encoders_loads_in_stock_sdxl(tiny_sdxl_dir, tiny_sdxl, tmp_path, layout):
    art = diffusion.personalize(tiny_sdxl, concept_images(2), "lora", token="<r>", steps=1, batch_size=2,
                                output_dir=tmp_path / "lora", progress=False,
                                config={"r": 2, "lr": 0.05, "train_text_encoder": True})  # fmt: skip
    keys = load_file(art / KOHYA_FILE)
    assert any(k.startswith("lora_te1_") for k in keys) and any(k.startswith("lora_te2_") for k in keys)
    ours = _generate(tiny_sdxl, PROMPT, [art / layout])
    stock = _stock(tiny_sdxl_dir)
    stock.load_lora_weights(art, weight_name=layout)
    np.testing.assert_allclose(sample(stock, PROMPT), ours[None], atol=1e-5)
    assert np.abs(ours - sample(tiny_sdxl, PROMPT)[0]).max() > 1e-4


@pytest.mark.parametrize(("method", "config", "files"), [
    ("svdiff", {"lr": 0.05, "train_text_encoder": True}, ["text_encoder_2", "text_encoder", "unet"]),
    ("difffit", {"lr": 0.05}, ["unet"]),
    ("custom_diffusion", {"lr": 0.01}, ["pytorch_custom_diffusion_weights.safetensors"]),
])  # fmt: skip
def test_unet_methods_train_and_sample_on_sdxl(tiny_sdxl, tmp_path, method, config, files):
    """With prior preservation (class prompts through both encoders); SVDiff also shifts both text encoders."""
    base = sample(tiny_sdxl, PROMPT)
    art = diffusion.personalize(tiny_sdxl, concept_images(2), method, token="<r>", class_word="circle", steps=1,
                                batch_size=2, output_dir=tmp_path / method, progress=False, config=config,
                                prior_preservation=True, class_images=concept_images(2, seed=1))  # fmt: skip
    assert read_artifact(art).kind == method and all((art / f).exists() for f in files)
    np.testing.assert_array_equal(sample(tiny_sdxl, PROMPT), base)  # training left the pipeline as it was
    assert np.abs(_generate(tiny_sdxl, PROMPT, [art]) - base[0]).max() > 1e-4
    np.testing.assert_array_equal(sample(tiny_sdxl, PROMPT), base)  # and so did sampling


def test_the_cli_trains_and_samples_on_an_sdxl_base(tiny_sdxl_dir, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i, image in enumerate(concept_images(2)):
        image.save(images / f"{i}.png")
    art = tmp_path / "art"
    code = main(["diffusion", "personalize", "--model", str(tiny_sdxl_dir), "--images", str(images), "--token", "<q>",
                 "--set", "init_token=red", "--steps", "1", "--batch-size", "2", "--out", str(art)])  # fmt: skip
    assert code == 0 and sorted(load_file(art / "learned_embeds.safetensors")) == ["clip_g", "clip_l"]
    code = main(["diffusion", "generate", "--model", str(tiny_sdxl_dir), "--prompt", "a <q>", "--adapter", str(art),
                 "--steps", "2", "--scheduler", "dpm++", "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 0 and len(list((tmp_path / "out").glob("*.png"))) == 1
