"""The memory flags of `studio diffusion personalize|train-control` reach the trainers as `MemoryOptions`."""

import pytest

import diffusion
from diffusion.memory import MemoryOptions, bitsandbytes_available
from studio.cli import main


@pytest.fixture
def calls(monkeypatch):
    """The trainers replaced by recorders of their keyword arguments (the flags are all this tests)."""
    seen = []
    monkeypatch.setattr(diffusion, "load_pipeline", lambda *a, **k: "pipe")
    for name in ("personalize", "train_control"):
        monkeypatch.setattr(diffusion, name, lambda *a, **k: seen.append(k) or "art")
    return seen


def test_memory_flags_become_the_run_memory_options(calls, tmp_path):
    base = ["--out", str(tmp_path / "a")]
    assert main(["diffusion", "personalize", "--images", ".", "--token", "<q>", *base,
                 "--gpu-memory", "12", "--no-offload", "--frozen-dtype", "fp32"]) == 0  # fmt: skip
    assert main(["diffusion", "train-control", "--data", ".", *base, "--gradient-checkpointing"]) == 0
    assert calls[0]["memory"] == MemoryOptions(gpu_memory="12", offload=False, frozen_dtype="fp32")
    assert calls[1]["memory"] == MemoryOptions(gradient_checkpointing=True)


@pytest.mark.skipif(bitsandbytes_available(), reason="the error is for a machine without bitsandbytes")
def test_the_8bit_optimizer_without_bitsandbytes_is_one_line_before_loading(calls, tmp_path, capsys):
    code = main(
        ["diffusion", "train-control", "--data", ".", "--out", str(tmp_path), "--optimizer", "adamw8bit"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and calls == [] and len(err.splitlines()) == 1
    assert "bitsandbytes" in err and "adaptation-studio[memory]" in err and "'adamw'" in err
