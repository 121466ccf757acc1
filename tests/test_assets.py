"""What `assets/` may hold: its size budget, file formats everyone loads without unpickling, and the size its
README states."""

import re
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
ALLOWED_SUFFIXES = {".safetensors", ".json", ".txt", ".md", ".py"}


def _files() -> list[Path]:
    return [p for p in ASSETS.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def _total_mb() -> float:
    return sum(p.stat().st_size for p in _files()) / 1e6


def test_assets_stay_under_the_size_budget():
    assert _total_mb() < 30, f"assets/ holds {_total_mb():.1f} MB; the budget is ~30 MB"


def test_assets_hold_no_pickled_weights():
    odd = sorted(str(p.relative_to(ASSETS)) for p in _files() if p.suffix not in ALLOWED_SUFFIXES)
    assert not odd, f"assets/ may hold only safetensors, JSON and text files: {odd}"


def test_readme_states_the_actual_total_size():
    stated = re.search(r"Total size:\s+([\d.]+)\s+MB", (ASSETS / "README.md").read_text())
    assert stated, "assets/README.md should state the total size"
    actual = _total_mb()
    assert abs(float(stated.group(1)) - actual) < 0.1, (
        f"README says {stated.group(1)} MB; actual {actual:.2f} MB"
    )
