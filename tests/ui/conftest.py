"""Fixtures for the studio's tests: a `Studio` on a temporary workspace and images from the image world."""

from __future__ import annotations

import pytest
from PIL import Image

from studio.world import Scene, novel_concept_task, render


@pytest.fixture(autouse=True)
def home(tmp_path_factory, monkeypatch):
    """Every studio test runs under a fresh temporary home with the cache variables unset: nothing reads or
    writes the real `~/.cache`, and the default cache and workspace paths themselves are what runs."""
    folder = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(folder))
    for variable in ("STUDIO_CACHE", "STUDIO_SVD_CACHE", "STUDIO_WORKSPACE"):
        monkeypatch.delenv(variable, raising=False)
    return folder


@pytest.fixture
def studio(tmp_path):
    """A `Studio` (workspace, library, job queue) in a temporary folder."""
    from studio.ui import Studio

    return Studio(tmp_path / "workspace", max_upload_mb=5)


@pytest.fixture
def concept_files(tmp_path):
    """Three renders of one red star on grey (a concept to personalize on), as PNG paths."""
    folder = tmp_path / "concept"
    folder.mkdir()
    paths = []
    for i in range(3):
        path = folder / f"star{i}.png"
        render(Scene("star", "red", background="grey"), 64, i).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture
def fewshot_files(tmp_path):
    """Two images per held-out shape named after their class (`star_0.png`), the class names, test pairs."""
    folder = tmp_path / "fewshot"
    folder.mkdir()
    task = novel_concept_task(shots=2, val_per_class=1, test_per_class=1)
    paths = []
    for i, (image, label) in enumerate(task.train):
        path = folder / f"{task.classes[label]}_{i}.png"
        image.save(path)
        paths.append(str(path))
    return paths, task.classes, task.test


@pytest.fixture
def png(tmp_path):
    """A factory of small PNG files."""

    def make(name="img.png", size=16):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (size, size), (200, 30, 30)).save(path)
        return path

    return make
