"""The mini-VTAB-1k's natural group on the bundled ViT, by `benchmarks/vision_vtab.py`.

Measured (README, mini-VTAB-1k): on the held-out shapes, textures and digits, LoRA, AdaptFormer and SSF beat
the linear probe's mean by 16.3, 9.9 and 8.8 points. The margin asserted is well inside those. The workers
run single-threaded with fixed seeds, so this run repeats the measured one.
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # about 15 CPU-minutes

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ["lora", "adaptformer", "ssf"]
MARGIN = 5.0  # accuracy points


@pytest.fixture(scope="module")
def natural_means(tmp_path_factory) -> dict[str, float]:
    """Mean test accuracy (%) of the linear probe and the adapters over the natural tasks."""
    out = tmp_path_factory.mktemp("vtab") / "natural.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "vision_vtab.py"),
            *(
                "--tasks",
                "heldout_shapes,textures,digits",
                "--methods",
                ",".join(["linear_probe", *ADAPTERS]),
            ),
            *("--workers", "3", "--json", str(out)),
        ],
        cwd=ROOT,
        check=True,
    )
    results = json.loads(out.read_text())["results"]
    return {
        m: statistics.mean(r[m]["test"] * 100 for r in results.values()) for m in ["linear_probe", *ADAPTERS]
    }


@pytest.mark.parametrize("method", ADAPTERS)
def test_adapter_beats_the_linear_probe_on_the_natural_tasks(method, natural_means):
    assert natural_means[method] > natural_means["linear_probe"] + MARGIN, natural_means
