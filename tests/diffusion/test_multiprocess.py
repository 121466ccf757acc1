"""`personalize` (Textual Inversion with prior preservation) and `train_control` (ControlNet) under `accelerate
launch` with two CPU processes: class images drawn and the artifact written once, by the main process,
previews on the main process only, and a stopped-then-resumed run ending where an uninterrupted one does."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from studio.world import Scene
from tests.diffusion.tiny import write_control_pairs

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _close(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.slow
def test_two_processes_train_ti_and_controlnet_once_and_resume_exactly(tiny_sd_dir, tmp_path):
    pairs = tmp_path / "pairs"
    write_control_pairs(
        pairs, [Scene(s, "red", background="grey") for s in ("circle", "square", "star", "circle")]
    )
    out = tmp_path / "out"
    out.mkdir()
    launcher = shutil.which("accelerate") or str(Path(sys.executable).with_name("accelerate"))
    # As tests/engine/test_engine_ddp.py: torchrun's launcher with ACCELERATE_USE_CPU gives two gloo processes.
    cmd = [
        launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        str(REPO / "tests" / "diffusion" / "ddp_script.py"), str(tiny_sd_dir), str(pairs), str(out),
    ]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    assert {json.loads((out / f"done-{r}").read_text())["num_processes"] for r in (0, 1)} == {2}
    previews = sorted(p.name for p in out.glob("preview-*"))
    assert previews and all("-rank0-" in name for name in previews)  # the main process only
    assert {"preview-ti-rank0-step2", "preview-controlnet-rank0-step4"} <= set(previews)
    # One copy of each artifact, by the main process (the resumed runs write theirs at the end).
    assert sorted(p.name for p in out.glob("wrote-*")) == [
        f"wrote-{kind}-{run}-rank0" for kind in ("controlnet", "ti") for run in ("full", "resumed")
    ]
    for kind, weights in (
        ("ti", "learned_embeds.safetensors"),
        ("controlnet", "diffusion_pytorch_model.safetensors"),
    ):
        full, resumed = out / f"{kind}-full", out / f"{kind}-resumed"
        extra = json.loads((full / "studio_artifact.json").read_text())["extra"]
        assert extra["steps_done" if kind == "ti" else "steps"] == 4
        assert _close(load_file(full / weights), load_file(resumed / weights)), kind
        assert not [p for p in full.rglob("*") if p.name.startswith(".") and p.suffix == ".tmp"]
    assert sorted(p.name for p in (out / "ti-full" / "class_images").iterdir()) == ["0000.png", "0001.png"]
