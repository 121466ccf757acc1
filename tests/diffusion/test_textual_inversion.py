"""Textual Inversion: only the new rows train, the artifact loads in stock diffusers with identical images,
A1111 embeddings import without unpickling, several tokens mix, and the pipeline is left unchanged."""

import copy

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from safetensors.torch import load_file

import diffusion
from diffusion.architecture import SD
from diffusion.latents import tokenize
from diffusion.textual_inversion import TextualInversionConfig, add_concept, concept_layer
from diffusion.unload import remove_adapter, requires_grad_flags
from tests.diffusion.tiny import concept_images, sample


class Payload:
    """Stands for arbitrary code a malicious pickle could name: weights_only loading must refuse it."""


@pytest.fixture(scope="module")
def pipe(tiny_sd_dir):
    return diffusion.load_pipeline(tiny_sd_dir, disable_progress_bar=True)


@pytest.fixture(scope="module")
def artifact(pipe, tmp_path_factory):
    out = tmp_path_factory.mktemp("ti") / "concept"
    return diffusion.personalize(
        pipe, concept_images(), token="<blob>", init_token="circle", num_vectors=2, steps=3, batch_size=2,
        lr=0.05, output_dir=out, progress=False,
    )  # fmt: skip


def test_only_the_new_rows_receive_gradients(pipe):
    config = TextualInversionConfig(token="<g>", init_token="red")
    flags = requires_grad_flags(pipe.text_encoder)
    table = pipe.text_encoder.get_input_embeddings().weight
    tokenizer, layer = add_concept(pipe.tokenizer, pipe.text_encoder, config)
    try:
        assert torch.equal(
            layer.new_embeddings[0], table[tokenizer("red", add_special_tokens=False).input_ids[0]]
        )
        out = SD.encode([pipe.text_encoder], [tokenize(tokenizer, ["a <g> circle"])]).hidden
        out.square().sum().backward()
        trainable = [n for n, p in pipe.text_encoder.named_parameters() if p.requires_grad]
        assert len(trainable) == 1 and trainable[0].endswith("token_embedding.new_embeddings")
        assert layer.new_embeddings.grad is not None and layer.new_embeddings.grad.abs().sum() > 0
        assert all(
            p.grad is None for n, p in pipe.text_encoder.named_parameters() if "new_embeddings" not in n
        )
    finally:
        remove_adapter(pipe.text_encoder, flags)
    assert pipe.text_encoder.get_input_embeddings().weight is table


def test_artifact_format_and_only_the_token_rows_changed(pipe, artifact):
    tensors = load_file(artifact / "learned_embeds.safetensors")
    assert list(tensors) == ["<blob>"] and tensors["<blob>"].shape == (2, 32)
    init = pipe.text_encoder.get_input_embeddings().weight[pipe.tokenizer("circle").input_ids[1]]
    assert not torch.allclose(tensors["<blob>"][0], init)  # trained
    info = diffusion.read_artifact(artifact)
    assert info.kind == "textual_inversion" and info.base_model == pipe.base_model_id
    assert info.hyperparameters["num_vectors"] == 2 and info.library.startswith("adaptation-studio")


def test_personalize_leaves_the_pipeline_unchanged(tiny_sd_dir, pipe, artifact):
    fresh = diffusion.load_pipeline(tiny_sd_dir, disable_progress_bar=True)
    assert len(pipe.tokenizer) == len(fresh.tokenizer)
    for (name, a), b in zip(
        pipe.text_encoder.state_dict().items(), fresh.text_encoder.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert all(
        torch.equal(a, b) for a, b in zip(pipe.unet.parameters(), fresh.unet.parameters(), strict=True)
    )


def test_stock_load_textual_inversion_gives_identical_images(tiny_sd_dir, pipe, artifact):
    ours = diffusion.generate(pipe, "a <blob> on a grey background", adapters=[artifact], num_inference_steps=2,
                              guidance_scale=4.0, seed=3)  # fmt: skip
    stock = StableDiffusionPipeline.from_pretrained(tiny_sd_dir, local_files_only=True)
    stock.set_progress_bar_config(disable=True)
    stock.load_textual_inversion(artifact)
    generator = torch.Generator().manual_seed(3)
    theirs = stock(
        "a <blob> on a grey background", num_inference_steps=2, guidance_scale=4.0, generator=generator
    )
    assert np.array_equal(np.asarray(ours[0]), np.asarray(theirs.images[0]))
    plain = diffusion.generate(
        pipe, "a on a grey background", num_inference_steps=2, guidance_scale=4.0, seed=3
    )
    assert not np.array_equal(np.asarray(ours[0]), np.asarray(plain[0]))  # the token does reach the image


def test_a1111_pt_imports_without_unpickling(pipe, artifact, tmp_path):
    vectors = load_file(artifact / "learned_embeds.safetensors")["<blob>"]
    pt = tmp_path / "blob.pt"
    torch.save({"string_to_param": {"*": vectors}, "name": "<blob>", "step": 3}, pt)
    args = dict(num_inference_steps=2, guidance_scale=4.0, seed=1)
    a = diffusion.generate(pipe, "a <blob>", adapters=[pt], **args)
    b = diffusion.generate(pipe, "a <blob>", adapters=[artifact], **args)
    assert np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
    evil = tmp_path / "evil.pt"
    torch.save({"string_to_param": {"*": vectors}, "name": "<x>", "payload": Payload()}, evil)
    with pytest.raises(ValueError, match="weights_only"):
        diffusion.generate(pipe, "a <x>", adapters=[evil], **args)


def test_several_tokens_mix_and_the_pipe_is_restored(pipe, artifact, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    torch.save({"<dot>": torch.randn(1, 32)}, other / "dot.bin")
    before = sample(pipe)
    vocab, rows = len(pipe.tokenizer), pipe.text_encoder.get_input_embeddings().weight.shape[0]
    both = diffusion.generate(pipe, "a <blob> and a <dot>", adapters=[artifact, other / "dot.bin"],
                              num_inference_steps=2, seed=0)  # fmt: skip
    only = diffusion.generate(pipe, "a <blob> and a", adapters=[artifact], num_inference_steps=2, seed=0)
    assert not np.array_equal(np.asarray(both[0]), np.asarray(only[0]))
    assert len(pipe.tokenizer) == vocab and pipe.text_encoder.get_input_embeddings().weight.shape[0] == rows
    assert np.array_equal(sample(pipe), before)


def test_a_token_already_in_the_vocabulary_is_refused(pipe, tmp_path):
    with pytest.raises(ValueError, match="already in the tokenizer's vocabulary"):
        diffusion.personalize(pipe, concept_images(1), token="circle", steps=1, output_dir=tmp_path)
    tokenizer = copy.deepcopy(pipe.tokenizer)
    tokenizer.add_tokens(["<a>_1"])
    with pytest.raises(ValueError, match="'<a>_1' is already"):
        add_concept(tokenizer, pipe.text_encoder, TextualInversionConfig(token="<a>", num_vectors=2))
    with pytest.raises(ValueError, match="carries no Textual Inversion concept"):
        concept_layer(pipe.text_encoder)
