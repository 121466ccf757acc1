"""The wheel is a working install: it carries the bundled models, and the installed `studio` (not this
checkout) finds them and runs `studio demo` to the accuracy the README states."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("shapes-vit", "shapes-clip", "shapes-sd")
BUILD_LEFTOVERS = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "runs")


def _run(command: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict]:
    """Build the wheel offline with the installed setuptools, install it into a folder outside the checkout.

    Returns:
        The wheel file, the install folder and an environment whose Python imports the installed copy
        (its dependencies come from this interpreter's site-packages).
    """
    tmp = tmp_path_factory.mktemp("wheel")
    # A clean copy: building in the checkout would reuse (and leave) its build/ and *.egg-info folders.
    source = shutil.copytree(ROOT, tmp / "source", ignore=shutil.ignore_patterns(*BUILD_LEFTOVERS))
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
          "-w", str(tmp / "dist")], cwd=tmp)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("*.whl")
    site = tmp / "site"
    _run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        cwd=tmp,
    )
    env = {**os.environ, "PYTHONPATH": str(site), "STUDIO_ASSETS": ""}
    return wheel, site, env


def test_wheel_ships_every_bundled_model_file(installed):
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for model in MODELS:
        committed = [
            p.relative_to(ROOT / "assets") for p in (ROOT / "assets" / model).rglob("*") if p.is_file()
        ]
        missing = [str(p) for p in committed if f"studio_assets/{p.as_posix()}" not in names]
        assert committed and not missing, f"the wheel lacks {model} files: {missing}"


def test_installed_copy_resolves_models_from_the_install(installed, tmp_path):
    _, site, env = installed
    code = (
        "import studio, vision; from studio.core import resolve_asset; "
        "print(studio.__file__); print(resolve_asset('studio/shapes-sd')); "
        "print(vision.create_model('studio/shapes-vit').__class__.__name__)"
    )
    studio_file, folder, model = _run([sys.executable, "-c", code], cwd=tmp_path, env=env).split()
    assert Path(studio_file).is_relative_to(site), f"imported {studio_file}, not the installed copy"
    assert Path(folder).is_relative_to(site) and (Path(folder) / "model_index.json").is_file()
    assert model == "VisionTransformer"


@pytest.mark.slow
def test_installed_studio_demo_reaches_the_readme_accuracy(installed, tmp_path):
    _, site, env = installed
    printed = _run([str(site / "bin" / "studio"), "demo", "--out", str(tmp_path / "runs")], cwd=tmp_path, env=env,
                   timeout=900)  # fmt: skip
    stated = re.search(r"([\d.]+)% test accuracy", (ROOT / "README.md").read_text())
    # the line `studio vision eval` prints (the finetune step before it prints a val accuracy)
    measured = re.findall(r"^accuracy ([\d.]+) on \d+ images \(loss", printed, re.MULTILINE)
    assert stated and measured, printed[-2000:]
    assert f"{100 * float(measured[-1]):.1f}" == stated.group(1)
