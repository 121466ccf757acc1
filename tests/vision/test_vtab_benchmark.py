"""`benchmarks/vision_vtab.py` end to end on a tiny configuration: the protocol's results and tables."""

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "vision_vtab.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=240
    )


def _is_multiple(value: float, step: float) -> bool:
    return abs(value / step - round(value / step)) < 1e-6


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two tasks of different groups, the cached-feature probe and one fine-tuned method, 30 images, 1 epoch."""
    out = tmp_path_factory.mktemp("vtab") / "results.json"
    run = _run(
        *("--train", "30", "--test", "10", "--epochs", "1", "--workers", "0"),
        *("--tasks", "count,masks", "--methods", "linear_probe,ssf", "--json", str(out)),
    )
    assert run.returncode == 0, run.stderr
    return run.stdout, json.loads(out.read_text())


def test_every_task_and_method_gets_a_learning_rate_from_its_grid_and_a_test_accuracy(tiny_run):
    _, data = tiny_run
    grids = {"linear_probe": [1e-2, 3e-2], "ssf": [3e-3, 1e-2]}
    assert set(data["results"]) == {"count", "masks"}
    for task in data["results"].values():
        assert set(task) == set(grids)
        for method, result in task.items():
            assert result["lr"] in grids[method]
            # Accuracies over 10 test and 6 validation images.
            assert 0 <= result["test"] <= 1 and _is_multiple(result["test"], 1 / 10)
            assert _is_multiple(result["val"], 1 / 6)
    assert data["settings"]["train"] == 30 and data["settings"]["epochs"] == 1


def test_tables_show_group_means_beside_the_papers(tiny_run):
    stdout, data = tiny_run
    header = next(line for line in stdout.splitlines() if "structured" in line and "papers" in line)
    assert header.split()[:5] == ["method", "natural", "specialized", "structured", "mean"]
    ssf = next(line for line in stdout.splitlines() if line.startswith("ssf") and "|" in line)
    ours, papers = ssf.split("|")
    count, masks = (data["results"][t]["ssf"]["test"] * 100 for t in ("count", "masks"))
    assert ours.split()[1:] == ["nan", f"{masks:.1f}", f"{count:.1f}", f"{(count + masks) / 2:.1f}"]
    assert papers.split() == ["81.6", "86.6", "59.0", "73.1"]  # the SSF paper's VTAB-1k group means


def test_papers_means_are_the_task_weighted_means_of_their_groups():
    """A mistyped number shows: VTAB-1k's 19-task mean weighs its groups by their 7, 4 and 8 tasks."""
    papers = runpy.run_path(str(SCRIPT), run_name="vision_vtab")["PAPERS"]
    for method, (natural, specialized, structured, mean) in papers.items():
        assert abs((7 * natural + 4 * specialized + 8 * structured) / 19 - mean) < 0.1, method


def test_an_unknown_method_is_a_one_line_usage_error():
    run = _run("--methods", "lora,prefix_tuning")
    assert run.returncode == 2
    assert "error: unknown method 'prefix_tuning'; choose from linear_probe,full" in run.stderr
    assert "Traceback" not in run.stderr
