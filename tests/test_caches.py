"""The default cache locations: with no `STUDIO_CACHE` / `STUDIO_SVD_CACHE`, caches go under `~/.cache`."""

from __future__ import annotations

from diffusers import UNet2DConditionModel

from diffusion.svdiff import SVDiffConfig
from studio.core import inject
from tests.vlm.test_fewshot_clip import images
from tests.vlm.tiny import tiny_clip
from vlm.classifier import FewShotCLIP


def test_default_caches_live_under_the_home_folder(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("STUDIO_CACHE")
    monkeypatch.delenv("STUDIO_SVD_CACHE")
    root = home / ".cache" / "adaptation-studio"

    clf = FewShotCLIP.from_model(*tiny_clip(), model_id="tiny", method="zero_shot", templates="single")
    clf.features.encode(images(1)[0])
    assert list((root / "clip-features").rglob("*.safetensors"))

    unet = UNet2DConditionModel(
        sample_size=8, block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1, cross_attention_dim=8,
        attention_head_dim=4, norm_num_groups=4,
    )  # fmt: skip
    inject(unet, SVDiffConfig())
    assert list((root / "svd").glob("svd-*.safetensors"))
    assert {p.name for p in home.rglob("*") if p.is_dir() and p.parent == home} == {".cache"}  # nothing else
