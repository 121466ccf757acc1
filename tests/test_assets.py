"""What `assets/` may hold: its size budget, file formats everyone loads without unpickling, and the size its
README states."""

import json
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


def _metrics(model: str) -> dict:
    return json.loads((ASSETS / model / "metrics.json").read_text())


def test_metrics_record_the_command_not_where_it_wrote():
    for model in ("shapes-vit", "shapes-clip", "shapes-sd"):
        recipe = _metrics(model)["recipe"]
        assert re.fullmatch(r"python assets/recipes/\w+\.py( --[\w-]+( [\w.-]+)?)*", recipe), recipe
        assert "--out" not in recipe, recipe


def test_readme_quality_figures_are_the_recorded_metrics():
    """The figures assets/README.md states are the ones the builds (or the eval command) measured."""
    readme = (ASSETS / "README.md").read_text()
    vit, clip, sd = (
        _metrics("shapes-vit")["test"],
        _metrics("shapes-clip")["zero_shot"],
        _metrics("shapes-sd"),
    )
    stated = {
        f"{100 * vit['accuracy']:.1f}% on {vit['n']:,} fresh test images",
        f"shape {100 * clip['shape_accuracy']:.0f}%, colour {100 * clip['colour_accuracy']:.0f}%",
        f"{100 * sd['joint_accuracy']:.1f}% joint shape+colour ({100 * sd['shape_accuracy']:.1f}% shape, "
        f"{100 * sd['colour_accuracy']:.1f}% colour)",
        f"ceiling (round-tripped real renders) is {100 * sd['vae_joint_accuracy']:.0f}% joint",
    }
    assert not [s for s in stated if s not in readme], [s for s in stated if s not in readme]
