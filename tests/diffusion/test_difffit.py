"""DiffFit: γ = 1 and zero shifts are the base UNet exactly, only DiffFit's parameters train, merge equals
unmerged, and the saved artifact samples through `generate` and exports as a stock UNet."""

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel

import diffusion
from diffusion.adapter_folders import merged_unet_from_folders, save_adapter_folders
from diffusion.artifacts import read_artifact
from diffusion.difffit import DiffFitConfig, NormAffineShift, ScaledBias
from diffusion.unload import remove_adapter, requires_grad_flags
from studio.core import adapter_layers, inject, merge, unmerge
from tests.diffusion.test_lora import _unet_out
from tests.diffusion.tiny import sample


def _perturb(unet, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in adapter_layers(unet):
            for _, p in layer.adapter_named_parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.2)


def test_identity_at_init_only_difffit_trains_and_merge_equals_unmerged(tiny_pipe):
    unet = tiny_pipe.unet
    base, flags = _unet_out(unet), requires_grad_flags(unet)
    inject(unet, DiffFitConfig())
    assert torch.equal(_unet_out(unet), base)  # γ = 1 and δ = 0: exactly the base
    layers = dict(adapter_layers(unet))
    scaled = [n for n, layer in layers.items() if isinstance(layer, ScaledBias) and layer.gamma is not None]
    assert scaled and all(n.endswith(("attn1.to_out.0", "attn2.to_out.0", "ff.net.2")) for n in scaled)
    assert any(isinstance(layer, NormAffineShift) for layer in layers.values())
    trainable = [p for p in unet.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) < 0.05 * sum(p.numel() for p in unet.parameters())
    _perturb(unet)
    adapted = _unet_out(unet)
    assert not torch.allclose(adapted, base, atol=1e-3)
    merge(unet)
    assert torch.allclose(_unet_out(unet), adapted, atol=1e-5)
    unmerge(unet)
    remove_adapter(unet, flags)
    assert torch.equal(_unet_out(unet), base)


def test_the_artifact_samples_through_generate_and_exports_a_stock_unet(tiny_pipe, tiny_sd_dir, tmp_path):
    fresh = diffusion.load_pipeline(str(tiny_sd_dir), disable_progress_bar=True)
    base = sample(fresh)
    inject(tiny_pipe.unet, DiffFitConfig())
    _perturb(tiny_pipe.unet)
    tiny_pipe.unet.eval()
    ours, adapted = sample(tiny_pipe), _unet_out(tiny_pipe.unet)
    assert save_adapter_folders(tiny_pipe, tmp_path / "art", base_model=None) == ["unet"]
    assert read_artifact(tmp_path / "art").kind == "difffit"
    (image,) = diffusion.generate(fresh, "a red circle", adapters=[tmp_path / "art"], num_inference_steps=2,
                                  guidance_scale=4.0, seed=0, output_type="np")  # fmt: skip
    np.testing.assert_allclose(image, ours[0], atol=1e-6)
    np.testing.assert_array_equal(sample(fresh), base)  # generate left the pipeline as it was
    merged_unet_from_folders(fresh, tmp_path / "art", tmp_path / "unet")
    assert torch.allclose(
        _unet_out(UNet2DConditionModel.from_pretrained(tmp_path / "unet")), adapted, atol=1e-5
    )


def test_scale_targets_that_match_nothing_are_refused(tiny_pipe):
    with pytest.raises(ValueError, match="attn9"):
        inject(tiny_pipe.unet, DiffFitConfig(scale_targets=["attn9.to_out.0"]))
