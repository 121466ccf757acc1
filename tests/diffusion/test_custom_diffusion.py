"""Custom Diffusion: the trained projections start as the base weights, only they train, and an artifact (the
projections plus a modifier token) gives the same images through `generate` as through stock diffusers'
`unet.load_attn_procs` + `load_textual_inversion`, leaving the pipeline as it was."""

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from safetensors.torch import load_file, save_file

import diffusion
from diffusion.artifacts import read_artifact
from diffusion.concept import Concept
from diffusion.custom_diffusion import WEIGHTS_FILE, CustomDiffusionConfig, TrainedCopy, save_custom_diffusion
from diffusion.textual_inversion import save_embeddings
from diffusion.unload import remove_adapter, requires_grad_flags
from studio.core import adapter_layers, inject, merge, unmerge
from tests.diffusion.test_lora import _unet_out
from tests.diffusion.tiny import concept_images, sample, trained_custom_diffusion

TOKEN = "<v1>"


@pytest.mark.parametrize("train_q_out", [False, True])
def test_starts_as_the_base_trains_only_its_projections_and_merges(tiny_pipe, train_q_out):
    unet = tiny_pipe.unet
    base, flags = _unet_out(unet), requires_grad_flags(unet)
    inject(unet, CustomDiffusionConfig(train_q_out=train_q_out))
    assert torch.equal(_unet_out(unet), base)
    trained = {n for n, layer in adapter_layers(unet) if isinstance(layer, TrainedCopy)}
    ends = ("attn2.to_k", "attn2.to_v") + (("attn2.to_q", "attn2.to_out.0") if train_q_out else ())
    assert trained and all(n.endswith(ends) for n in trained)
    assert {n for n, p in unet.named_parameters() if p.requires_grad} == {f"{n}.weight_copy" for n in trained}
    remove_adapter(unet, flags)
    trained_custom_diffusion(unet, CustomDiffusionConfig(train_q_out=train_q_out))
    adapted = _unet_out(unet)
    merge(unet)
    assert torch.allclose(_unet_out(unet), adapted, atol=1e-6)
    unmerge(unet)
    remove_adapter(unet, flags)
    assert torch.equal(_unet_out(unet), base)


def test_generate_matches_stock_diffusers_and_restores_the_pipeline(tiny_pipe, tiny_sd_dir, tmp_path):
    art = tmp_path / "cd"
    save_custom_diffusion(trained_custom_diffusion(tiny_pipe.unet), art)
    embedding = torch.randn(
        1, tiny_pipe.text_encoder.config.hidden_size, generator=torch.Generator().manual_seed(1)
    )
    save_embeddings(art, TOKEN, embedding)
    assert read_artifact(art).kind == "custom_diffusion"
    prompt = f"a {TOKEN} circle"
    stock = StableDiffusionPipeline.from_pretrained(
        tiny_sd_dir, safety_checker=None, requires_safety_checker=False
    )
    stock.set_progress_bar_config(disable=True)
    # diffusers 0.42 sets the processors only when told the pipeline (`_pipeline`); without it the call is a no-op.
    stock.unet.load_attn_procs(art, weight_name=WEIGHTS_FILE, _pipeline=stock)
    assert {type(p).__name__ for p in stock.unet.attn_processors.values()} == {"CustomDiffusionAttnProcessor"}
    stock.load_textual_inversion(art, token=TOKEN)
    theirs = sample(stock, prompt)
    fresh = diffusion.load_pipeline(str(tiny_sd_dir), disable_progress_bar=True)
    base = sample(fresh, "a red circle")
    (ours,) = diffusion.generate(fresh, prompt, adapters=[art], num_inference_steps=2, guidance_scale=4.0, seed=0,
                                 output_type="np")  # fmt: skip
    np.testing.assert_allclose(ours, theirs[0], atol=1e-5)
    assert np.abs(ours - base[0]).max() > 1e-3
    assert not adapter_layers(fresh.unet) and TOKEN not in fresh.tokenizer.get_vocab()
    np.testing.assert_array_equal(sample(fresh, "a red circle"), base)


def test_an_artifact_for_another_unet_is_refused(tiny_pipe, tmp_path):
    save_custom_diffusion(trained_custom_diffusion(tiny_pipe.unet), tmp_path / "cd")
    remove_adapter(tiny_pipe.unet)
    file = tmp_path / "cd" / WEIGHTS_FILE
    tensors = load_file(file)
    key = next(k for k, v in tensors.items() if v.numel())
    save_file({**tensors, key: torch.zeros(3, 3)}, file)  # as from a UNet of other widths
    with pytest.raises(ValueError, match="does not fit this UNet"):
        diffusion.generate(tiny_pipe, "a circle", adapters=[tmp_path / "cd"], num_inference_steps=1)
    assert not adapter_layers(tiny_pipe.unet)


def test_two_concepts_learn_both_tokens_and_load_in_stock_diffusers(tiny_pipe, tiny_sd_dir, tmp_path):
    """Joint training of two concepts: both modifier tokens learn, and stock diffusers, given the K/V file and
    each token's file, samples the very images `generate` does."""
    art = diffusion.personalize(
        tiny_pipe, concept_images(2, seed=1), method="custom_diffusion", token="<v1>", class_word="circle",
        concepts=[Concept("<v2>", concept_images(2, seed=2), "square")], steps=2, batch_size=2, lr=0.05,
        output_dir=tmp_path / "cd2", progress=False,
    )  # fmt: skip
    table = tiny_pipe.text_encoder.get_input_embeddings().weight
    for token, word, name in (("<v1>", "circle", "learned_embeds.safetensors"),
                              ("<v2>", "square", "learned_embeds-2.safetensors")):  # fmt: skip
        ((key, learned),) = load_file(art / name).items()
        start = table[tiny_pipe.tokenizer(word, add_special_tokens=False).input_ids].mean(0)
        assert key == token and (learned[0] - start).abs().max() > 1e-3  # moved off its class word
    prompt = "a <v1> circle and a <v2> square"
    stock = StableDiffusionPipeline.from_pretrained(
        tiny_sd_dir, safety_checker=None, requires_safety_checker=False
    )
    stock.set_progress_bar_config(disable=True)
    stock.unet.load_attn_procs(art, weight_name=WEIGHTS_FILE, _pipeline=stock)
    stock.load_textual_inversion(art)
    stock.load_textual_inversion(art, weight_name="learned_embeds-2.safetensors")
    theirs = sample(stock, prompt)
    (ours,) = diffusion.generate(tiny_pipe, prompt, adapters=[art], num_inference_steps=2, guidance_scale=4.0,
                                 seed=0, output_type="np")  # fmt: skip
    np.testing.assert_allclose(ours, theirs[0], atol=1e-5)
    assert not {"<v1>", "<v2>"} & set(tiny_pipe.tokenizer.get_vocab())
