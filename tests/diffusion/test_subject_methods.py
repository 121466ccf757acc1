"""LoRA, DiffFit and Custom Diffusion train through `personalize` like every personalization method: the
pipeline is left as it was, only the method's parameters moved, and `generate` samples with the artifact."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import diffusion
from diffusion.artifacts import read_artifact
from diffusion.custom_diffusion import WEIGHTS_FILE
from diffusion.lora import LORA_FILE
from tests.diffusion.tiny import concept_images, sample

PROMPT = "a <r> circle"


def _moved(method, art, pipe):
    """Whether the trained tensors left their starting values (B = 0, γ = 1, the base K/V weights)."""
    if method == "lora":
        tensors = load_file(art / LORA_FILE)
        return any(t.abs().max() > 0 for k, t in tensors.items() if "lora_B" in k)
    if method == "difffit":
        tensors = load_file(art / "unet" / "adapter_model.safetensors")
        return any((t - 1).abs().max() > 0 for k, t in tensors.items() if k.endswith("gamma"))
    tensors = load_file(art / WEIGHTS_FILE)
    modules = dict(pipe.unet.named_modules())
    return any(
        not torch.equal(t, modules[k.replace(".processor.to_k_custom_diffusion.weight", ".to_k")].weight)
        for k, t in tensors.items()
        if k.endswith("to_k_custom_diffusion.weight")
    )


@pytest.mark.parametrize(("method", "config"), [("lora", {"r": 2, "lr": 0.05}), ("difffit", {"lr": 0.05}),
                                                ("custom_diffusion", {"lr": 0.01})])  # fmt: skip
def test_each_trains_through_personalize_and_samples_through_generate(tiny_pipe, tmp_path, method, config):
    base = sample(tiny_pipe, PROMPT)
    art = diffusion.personalize(tiny_pipe, concept_images(2), method, token="<r>", class_word="circle", steps=2,
                                batch_size=2, output_dir=tmp_path / method, progress=False, config=config)  # fmt: skip
    assert read_artifact(art).kind == method
    assert _moved(method, art, tiny_pipe)
    np.testing.assert_array_equal(sample(tiny_pipe, PROMPT), base)  # training left the pipeline as it was
    (image,) = diffusion.generate(tiny_pipe, PROMPT, adapters=[art], num_inference_steps=2, guidance_scale=4.0,
                                  seed=0, output_type="np")  # fmt: skip
    assert np.abs(image - base[0]).max() > 1e-4
    np.testing.assert_array_equal(sample(tiny_pipe, PROMPT), base)  # and so did sampling


def test_a_token_composes_with_one_layer_adapter_and_two_layer_adapters_are_refused(tiny_pipe, tmp_path):
    run = dict(class_word="circle", steps=1, batch_size=2, progress=False)
    ti = diffusion.personalize(tiny_pipe, concept_images(2), "textual_inversion", token="<t>",
                               output_dir=tmp_path / "ti", config={"lr": 0.5}, **run)  # fmt: skip
    lora = diffusion.personalize(tiny_pipe, concept_images(2), "lora", token="<r>",
                                 output_dir=tmp_path / "lora", config={"lr": 0.05}, **run)  # fmt: skip
    difffit = diffusion.personalize(tiny_pipe, concept_images(2), "difffit", token="<r>",
                                    output_dir=tmp_path / "difffit", **run)  # fmt: skip
    prompt = "a <t> and a <r> circle"
    kw = dict(num_inference_steps=2, guidance_scale=4.0, seed=0, output_type="np")
    (alone,) = diffusion.generate(tiny_pipe, prompt, adapters=[lora], **kw)
    (both,) = diffusion.generate(tiny_pipe, prompt, adapters=[ti, lora], **kw)
    assert np.abs(both - alone).max() > 1e-4  # the token's embedding took part
    with pytest.raises(ValueError, match=r"\(lora\) and .*\(difffit\) both change the pipeline's layers"):
        diffusion.generate(tiny_pipe, prompt, adapters=[lora, difffit], **kw)
