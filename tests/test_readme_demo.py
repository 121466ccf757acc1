"""The README's promise for `studio demo`: the installed console script prints the test accuracy README.md states."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # about 1 CPU-minute of training; minutes of wall time on a busy machine
@pytest.mark.timeout(1200)
def test_studio_demo_prints_the_accuracy_the_readme_states(tmp_path):
    stated = re.search(r"(\d+(?:\.\d+)?)% test accuracy", (ROOT / "README.md").read_text())
    assert stated, "README.md no longer states the demo's test accuracy"
    studio = shutil.which("studio", path=str(Path(sys.executable).parent)) or shutil.which("studio")
    assert studio, "the `studio` console script is not installed"
    proc = subprocess.run(
        [studio, "demo", "--out", str(tmp_path / "demo")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = re.findall(r"^accuracy (\d\.\d+) on \d+ images", proc.stdout, re.MULTILINE)
    assert printed, proc.stdout[-3000:]
    assert f"{float(printed[-1]) * 100:.1f}" == f"{float(stated.group(1)):.1f}", (
        printed[-1],
        stated.group(0),
    )
