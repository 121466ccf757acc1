"""Shared fixtures: caches kept out of the home folder, a tiny timm ViT and a tiny ImageFolder directory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

TINY_VIT = dict(img_size=32, patch_size=8, depth=2, embed_dim=48, num_heads=2)


def make_tiny_vit(num_classes: int = 3, seed: int = 0, **overrides):
    """A 2-block ViT at 32×32 built through `vision.create_model` (random weights, instant)."""
    import vision

    torch.manual_seed(seed)
    return vision.create_model("vit_small_patch16_224", num_classes=num_classes, **{**TINY_VIT, **overrides})


def write_image_folder(root, classes=("circle", "square", "stripes"), per_class=4, size=40, seed=0):
    """Class folders of small PNGs whose content depends on the class, so a model can learn them."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            array = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            array[..., c % 3] += 150
            Image.fromarray(array).save(root / name / f"{i}.png")
    return root


@pytest.fixture(autouse=True, scope="session")
def isolated_caches(tmp_path_factory):
    """Point the on-disk caches (CLIP features, SVDiff's SVDs) at temporary folders for the whole session.

    Session-wide, so module-scoped fixtures use them too; what a test finds there was written by this run, never
    by an earlier one in the real home cache. `tests/test_caches.py` covers the default locations.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_CACHE", str(tmp_path_factory.mktemp("studio-cache")))
        patch.setenv("STUDIO_SVD_CACHE", str(tmp_path_factory.mktemp("svd-cache")))
        yield


@pytest.fixture
def tiny_vit():
    """A factory for identical tiny ViTs: `tiny_vit()` twice gives the same weights."""
    return make_tiny_vit


@pytest.fixture
def image_folder(tmp_path):
    """An ImageFolder directory with 3 classes × 4 images."""
    return write_image_folder(tmp_path / "data")


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the method registry for one test: the toy methods it registers leave with it."""
    from studio.core import registry

    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))
