"""The loop under `accelerate launch` with two CPU processes (gloo)."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.engine.ddp_script import make_model

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_cpu_run_finishes_and_resumes_exactly(tmp_path):
    launcher = shutil.which("accelerate") or str(Path(sys.executable).with_name("accelerate"))
    # `accelerate launch --cpu --num_processes 2` starts a single process in accelerate 1.x (multi-CPU goes
    # through mpirun); the torchrun-based launcher plus ACCELERATE_USE_CPU gives two gloo processes.
    cmd = [
        launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        str(REPO / "tests" / "engine" / "ddp_script.py"), str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    assert (tmp_path / "done-0").exists() and (tmp_path / "done-1").exists()
    summary = json.loads((tmp_path / "summary.json").read_text())
    # 36 samples, batch 4 per process on 2 processes -> 5 batches each per epoch -> 3 steps with accumulation 2.
    assert summary["num_processes"] == 2 and summary["steps"] == 6
    assert summary["stopped"] == [True, 2] and summary["resumed_steps"] == 6
    assert all(torch.isfinite(torch.tensor(summary["losses"])))
    assert sorted(p.name for p in (tmp_path / "full" / "checkpoints").iterdir()) == ["step-000006"]

    full = load_file(str(tmp_path / "full.safetensors"))
    resumed = load_file(str(tmp_path / "resumed.safetensors"))
    initial = make_model().state_dict()
    assert any(not torch.equal(full[k], initial[k]) for k in initial)
    for name, value in full.items():
        assert torch.isfinite(value).all() and torch.allclose(value, resumed[name], atol=1e-6), name
