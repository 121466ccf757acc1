"""Fixtures of the diffusion tests: the tiny pipeline saved once per session (so that stock
`StableDiffusionPipeline.from_pretrained` loads the very same weights); tests/conftest.py isolates the SVD cache."""

from __future__ import annotations

import pytest

from tests.diffusion.tiny import build_tiny_pipeline


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory):
    """Folder of the tiny pipeline (`save_pretrained`), shared by the session."""
    folder = tmp_path_factory.mktemp("tiny-sd")
    build_tiny_pipeline().save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture
def tiny_pipe(tiny_sd_dir):
    """A fresh tiny pipeline loaded through `diffusion.load_pipeline` (tests may change it)."""
    import diffusion

    return diffusion.load_pipeline(tiny_sd_dir, disable_progress_bar=True)


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory):
    """Folder of the tiny SDXL pipeline (`save_pretrained`), shared by the session."""
    from tests.diffusion.tiny import build_tiny_sdxl_pipeline

    folder = tmp_path_factory.mktemp("tiny-sdxl")
    build_tiny_sdxl_pipeline().save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture
def tiny_sdxl(tiny_sdxl_dir):
    """A fresh tiny SDXL pipeline loaded through `diffusion.load_pipeline` (tests may change it)."""
    import diffusion

    return diffusion.load_pipeline(tiny_sdxl_dir, disable_progress_bar=True)
