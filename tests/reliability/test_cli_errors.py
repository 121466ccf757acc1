"""The CLI speaks one line: every user error is one `studio: error: ...` line on stderr and exit code 2, without a
traceback; a genuine bug keeps its traceback (exit 1), so the two can be told apart."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch

import vision
from studio.cli import main
from studio.core import inject, save_adapter
from tests.conftest import TINY_VIT, write_image_folder

STUDIO = Path(sys.executable).with_name("studio")  # the installed console script
TINY = [a for key, value in TINY_VIT.items() for a in ("--timm-arg", f"{key}={value}")]


def bomb_png(path: Path) -> Path:
    """A small PNG that claims 20000×20000 pixels: PIL refuses it as a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
    return path


def truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def one_error_line(err: str) -> str:
    """The error line, checked to be the only one and the last thing printed (libraries may log warnings)."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert [line for line in lines if "error" in line.lower()] == lines[-1:], err
    assert lines[-1].startswith("studio: error: "), err
    return lines[-1]


@pytest.fixture
def adapter(tmp_path) -> Path:
    """An adapter folder as `studio vision finetune` writes it (tiny ViT, SSF)."""
    torch.manual_seed(0)
    model = vision.create_model("vit_small_patch16_224", num_classes=3, **TINY_VIT)
    inject(model, vision.SSFConfig())
    metadata = {"classes": ["circle", "square", "stripes"], "timm_args": TINY_VIT, "init_seed": 0}
    return save_adapter(model, tmp_path / "adapter", metadata=metadata)


def test_the_installed_script_reports_user_errors_in_one_line(tmp_path, image_folder, adapter):
    """End to end through the console script, one case per layer: an argument's range, a config value, a damaged
    file (each start imports torch, timm and diffusers, so the other cases run in-process below)."""
    assert STUDIO.is_file(), "the `studio` console script is not installed in this environment"
    truncate(adapter / "adapter_model.safetensors")
    cases = {
        ("--port", "99999"): "argument --port: expected an integer in 1..65535, got 99999",
        ("vision", "finetune", "--data", str(image_folder), "--out", str(tmp_path / "o"), "--set", "init_std=abc"):
            "init_std must be a number, got 'abc'",
        ("vision", "eval", "--adapter", str(adapter), "--data", str(image_folder)):
            "adapter_model.safetensors is not a readable adapter weights file",
    }  # fmt: skip
    env = {**os.environ, "STUDIO_CACHE": str(tmp_path / "cache")}
    running = {
        args: subprocess.Popen(
            [str(STUDIO), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for args in cases
    }
    for args, process in running.items():
        _, err = process.communicate(timeout=240)
        assert process.returncode == 2, (args, err)
        assert cases[args] in one_error_line(err), args


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "99999"], "argument --port: expected an integer in 1..65535, got 99999"),
        (["--port", "http"], "argument --port: expected an integer in 1..65535, got 'http'"),
        (["--max-upload-mb", "-5"], "argument --max-upload-mb: expected a finite number > 0, got '-5'"),
        (["--max-upload-mb", "nan"], "argument --max-upload-mb: expected a finite number > 0, got 'nan'"),
        (
            ["diffusion", "generate", "--prompt", "a", "--steps", "0"],
            "argument --steps: expected an integer >= 1",
        ),
        (
            ["diffusion", "generate", "--prompt", "a", "--num-images", "0"],
            "argument --num-images: expected an",
        ),
        (["vision", "finetune"], "the following arguments are required: --data, --out"),
    ],
)
def test_arguments_are_checked_where_they_enter(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert message in one_error_line(capsys.readouterr().err)


def test_a_pickled_pretrained_file_is_refused(image_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    torch.save({"weights": torch.nn.Module()}, tmp_path / "evil.pt")  # a pickled object, not plain tensors
    args = ["vlm", "fit", "--pretrained", str(tmp_path / "evil.pt"), "--data", str(image_folder), "--out",
            str(tmp_path / "clf")]  # fmt: skip
    assert main(args) == 2
    assert "evil.pt is not a plain checkpoint" in one_error_line(capsys.readouterr().err)


def test_config_values_are_type_checked(image_folder, tmp_path, capsys):
    base = ["vision", "finetune", *TINY, "--data", str(image_folder), "--out", str(tmp_path / "o")]
    for extra, message in [
        (["--set", "bogus=1"], "unknown SSFConfig fields ['bogus']"),
        (["--method", "lora", "--set", "r=2.5"], "r must be an integer, got 2.5"),
        (["--set", "init_std=NaN"], "init_std must be a finite number, got nan"),
        (
            ["--timm-arg", "img_size=abc"],
            "--timm-arg: img_size must be an integer or a list of integers, got 'abc'",
        ),
    ]:
        assert main([*base, *extra]) == 2
        assert message in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()  # refused before any work


def test_an_adapter_config_with_wrong_types(adapter, image_folder, capsys):
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["config"]["init_std"] = "0.02"
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    assert main(["vision", "eval", "--adapter", str(adapter), "--data", str(image_folder)]) == 2
    assert "adapter_config.json: init_std must be a number, got '0.02'" in one_error_line(
        capsys.readouterr().err
    )


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    from tests.diffusion.tiny import build_tiny_pipeline

    folder = tmp_path_factory.mktemp("tiny-sd")
    build_tiny_pipeline().save_pretrained(folder, safe_serialization=True)
    return folder


def test_diffusion_bad_inputs(tiny_sd, tmp_path, capsys):
    ti = tmp_path / "ti"
    ti.mkdir()
    from safetensors.torch import save_file

    save_file({"<q>": torch.randn(1, 32)}, str(ti / "learned_embeds.safetensors"))
    truncate(ti / "learned_embeds.safetensors")
    generate = [
        "diffusion",
        "generate",
        "--model",
        str(tiny_sd),
        "--prompt",
        "a <q>",
        "--out",
        str(tmp_path / "s"),
    ]
    assert main([*generate, "--steps", "1", "--adapter", str(ti)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "learned_embeds.safetensors is not a readable Textual Inversion embedding" in line

    images = write_image_folder(tmp_path / "concept", classes=("a",), per_class=2) / "a"
    bomb_png(images / "bomb.png")
    personalize = ["diffusion", "personalize", "--model", str(tiny_sd), "--images", str(images), "--token", "<q>",
                   "--steps", "1", "--out", str(tmp_path / "art")]  # fmt: skip
    assert main(personalize) == 2
    assert "decompression bomb" in one_error_line(capsys.readouterr().err)


def test_vlm_predict_on_a_decompression_bomb(image_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    clf = tmp_path / "clf"
    fit = [
        "vlm",
        "fit",
        "--method",
        "zero_shot",
        "--templates",
        "single",
        "--data",
        str(image_folder),
        "--out",
    ]
    assert main([*fit, str(clf)]) == 0
    capsys.readouterr()
    assert main(["vlm", "predict", "--model-dir", str(clf), str(bomb_png(tmp_path / "bomb.png"))]) == 2
    assert "decompression bomb" in one_error_line(capsys.readouterr().err)


def test_a_genuine_bug_keeps_its_traceback(image_folder, tmp_path, monkeypatch):
    """A TypeError from the code itself is not a user error: `main` lets it through (the script exits 1)."""

    def broken(*args, **kwargs):
        raise TypeError("a bug in the code")

    monkeypatch.setattr(vision, "create_model", broken)
    with pytest.raises(TypeError, match="a bug in the code"):
        main(["vision", "finetune", *TINY, "--data", str(image_folder), "--out", str(tmp_path / "o")])
