"""SVDiff: zero shifts are the base model exactly, merge equals unmerged, save→load and the stock merged-UNet
export give identical outputs, the SVD is cached on disk, and norms get their own learning rate."""

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel

import diffusion
from diffusion.adapter_folders import adapter_folders_applied
from diffusion.artifacts import read_artifact
from diffusion.svdiff import NormShift, SpectralShift, SVDiffConfig, svd_cache_dir, svdiff_param_groups
from diffusion.unload import remove_adapter, requires_grad_flags
from studio.core import adapter_layers, inject, load_adapter, merge, unmerge
from tests.diffusion.tiny import concept_images, sample


def _unet_out(unet, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, ctx = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 5, 32, generator=g)
    with torch.no_grad():
        return unet(x, torch.tensor([10, 500]), encoder_hidden_states=ctx).sample


def _randomize_shifts(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in adapter_layers(model):
            layer.delta.copy_(torch.randn(layer.delta.shape, generator=g) * 0.5)


def test_zero_shifts_equal_the_base_and_merge_equals_unmerged(tiny_pipe):
    unet = tiny_pipe.unet
    base = _unet_out(unet)
    flags = requires_grad_flags(unet)
    inject(unet, SVDiffConfig())
    kinds = {type(layer) for _, layer in adapter_layers(unet)}
    assert kinds == {SpectralShift, NormShift}
    assert torch.equal(_unet_out(unet), base)  # exactly, not within the SVD's round-off
    _randomize_shifts(unet)
    shifted = _unet_out(unet)
    assert not torch.allclose(shifted, base, atol=1e-3)
    merge(unet)
    assert torch.allclose(_unet_out(unet), shifted, atol=1e-5)
    unmerge(unet)
    assert torch.allclose(_unet_out(unet), shifted, atol=1e-5)
    remove_adapter(unet, flags)
    assert torch.equal(_unet_out(unet), base)
    assert all(p.requires_grad for p in unet.parameters())


def test_svd_is_computed_once_and_cached_per_base_model(tiny_sd_dir, monkeypatch):
    inject(UNet2DConditionModel.from_pretrained(tiny_sd_dir / "unet"), SVDiffConfig())
    assert list(svd_cache_dir().glob("svd-*.safetensors"))
    monkeypatch.setattr(torch.linalg, "svd", lambda *a, **k: pytest.fail("SVD recomputed despite the cache"))
    inject(
        UNet2DConditionModel.from_pretrained(tiny_sd_dir / "unet"), SVDiffConfig()
    )  # served from the cache
    other = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(tiny_sd_dir / "unet"))
    with pytest.raises(pytest.fail.Exception, match="recomputed"):
        inject(other, SVDiffConfig())  # other weights: a cache miss


def test_norms_get_their_own_learning_rate(tiny_pipe):
    inject(tiny_pipe.unet, SVDiffConfig())
    spectral, norms = svdiff_param_groups(tiny_pipe.unet, lr=1e-3, lr_norm=1e-6)
    assert spectral["lr"] == 1e-3 and norms["lr"] == 1e-6
    n_singular = sum(min(m.base_layer.weight.shape[0], m.base_layer.weight[0].numel())
                     for _, m in adapter_layers(tiny_pipe.unet) if isinstance(m, SpectralShift))  # fmt: skip
    assert sum(p.numel() for p in spectral["params"]) == n_singular
    trainable = {id(p) for p in tiny_pipe.unet.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in spectral["params"] + norms["params"]}


@pytest.fixture(scope="module")
def trained(tiny_sd_dir, tmp_path_factory):
    pipe = diffusion.load_pipeline(tiny_sd_dir, disable_progress_bar=True)
    out = tmp_path_factory.mktemp("svdiff") / "concept"
    art = diffusion.personalize(
        pipe, concept_images(), method="svdiff", token="<blob>", class_word="circle", steps=2, batch_size=2,
        lr=0.5, train_text_encoder=True, output_dir=out, progress=False,
    )  # fmt: skip
    return pipe, art


def test_generate_applies_the_svdiff_and_equals_the_stock_merged_model(trained, tiny_sd_dir, tmp_path):
    pipe, art = trained
    assert (art / "unet" / "adapter_model.safetensors").is_file() and (art / "text_encoder").is_dir()
    before = sample(pipe)

    def run(adapters):
        return diffusion.generate(
            pipe,
            "a red circle",
            adapters=adapters,
            num_inference_steps=2,
            guidance_scale=4.0,
            output_type="np",
        )[0]

    ours, plain = run([art]), run([])
    assert np.array_equal(sample(pipe), before)  # generate left the pipeline as it was
    np.testing.assert_array_equal(plain, before[0])  # no adapters: the stock call, same seed
    assert np.abs(ours - plain).max() > 0.05  # the SVDiff changed the image ...
    np.testing.assert_array_equal(run([art]), ours)  # ... the same way each time

    # ... into the image of a stock pipeline read from disk with both shifted components merged (the download)
    merged = tmp_path / "merged"
    assert diffusion.export_merged_components(pipe, art, merged) == ["unet", "text_encoder"]
    unet = UNet2DConditionModel.from_pretrained(merged, subfolder="unet")
    text_encoder = CLIPTextModel.from_pretrained(merged, subfolder="text_encoder")
    stock = StableDiffusionPipeline.from_pretrained(tiny_sd_dir, unet=unet, text_encoder=text_encoder)
    stock.set_progress_bar_config(disable=True)
    np.testing.assert_allclose(ours, sample(stock)[0], rtol=0, atol=1e-4)

    live = load_adapter(UNet2DConditionModel.from_pretrained(tiny_sd_dir / "unet"), art / "unet")
    assert torch.allclose(_unet_out(unet), _unet_out(live), atol=1e-5)
    with pytest.warns(UserWarning, match="also adapts text_encoder, which a merged UNet leaves out"):
        alone = UNet2DConditionModel.from_pretrained(
            diffusion.export_merged_unet(pipe, art, tmp_path / "unet")
        )
    assert torch.equal(_unet_out(alone), _unet_out(unet))  # the UNet-only export is the same UNet
    assert not torch.allclose(_unet_out(unet), _unet_out(pipe.unet), atol=1e-4)


def _denoising_error(pipe, pictures, prompt):
    """Mean squared noise-prediction error on `pictures` at fixed noise and timesteps (stock diffusers calls)."""
    pixels = torch.stack(
        [torch.from_numpy(np.asarray(p, np.float32) / 127.5 - 1).permute(2, 0, 1) for p in pictures]
    )
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        latents = pipe.vae.encode(pixels).latent_dist.mean * pipe.vae.config.scaling_factor
        text = pipe.encode_prompt(prompt, "cpu", 1, False)[0].expand(len(pictures), -1, -1)
        errors = []
        for t in (100, 300, 500, 700, 900):
            noise = torch.randn(latents.shape, generator=g)
            timesteps = torch.full((len(pictures),), t)
            noisy = DDPMScheduler.from_config(pipe.scheduler.config).add_noise(latents, noise, timesteps)
            prediction = pipe.unet(noisy, timesteps, encoder_hidden_states=text).sample
            errors.append(torch.nn.functional.mse_loss(prediction, noise).item())
    return float(np.mean(errors))


def test_svdiff_learns_the_concept(tiny_pipe, tmp_path):
    """A short run lowers the denoising error on the concept images (fixed noise and timesteps)."""
    concept = [image.resize((16, 16)) for image in concept_images(4, seed=3)]
    art = diffusion.personalize(
        tiny_pipe, concept, method="svdiff", token="<blob>", class_word="circle", steps=8, batch_size=4,
        lr=0.1, flip=False, output_dir=tmp_path / "art", progress=False,
    )  # fmt: skip
    prompt = read_artifact(art).hyperparameters["prompts"][0]
    before = _denoising_error(tiny_pipe, concept, prompt)
    with adapter_folders_applied(tiny_pipe, art):
        after = _denoising_error(tiny_pipe, concept, prompt)
    assert after < 0.9 * before, (before, after)


def test_artifact_kind_and_mismatches_are_clear_errors(trained, tiny_sd_dir, tmp_path):
    pipe, art = trained
    info = diffusion.read_artifact(art)
    assert info.kind == "svdiff" and info.hyperparameters["train_text_encoder"] is True
    with pytest.raises(ValueError, match="both change the pipeline's layers"):
        diffusion.generate(pipe, "a", adapters=[art, art], num_inference_steps=1)
    other = diffusion.load_pipeline(tiny_sd_dir, disable_progress_bar=True)
    other.base_model_id = "someone/else"
    with pytest.raises(ValueError, match="for base model"):
        diffusion.generate(other, "a", adapters=[art], num_inference_steps=1)
    with pytest.raises(ValueError, match="unknown scheduler"):
        diffusion.generate(pipe, "a", scheduler="nope", num_inference_steps=1)
