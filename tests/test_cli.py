"""The `studio` command: finetune and eval from the shell, readable errors."""

import subprocess
import sys

from studio.cli import main

TINY = ["--timm-arg", "img_size=32", "--timm-arg", "patch_size=8", "--timm-arg", "depth=2",
        "--timm-arg", "embed_dim=48", "--timm-arg", "num_heads=2"]  # fmt: skip


def test_finetune_then_eval(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["vision", "finetune", *TINY, "--method", "vpt", "--set", "num_tokens=2", "--data", str(image_folder),
            "--val", str(image_folder), "--out", str(out), "--epochs", "2", "--batch-size", "4"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "vpt:" in printed and "final: val accuracy" in printed
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert main(["vision", "eval", "--adapter", str(out), "--data", str(image_folder)]) == 0
    accuracy = float(capsys.readouterr().out.split("accuracy ")[1].split()[0])
    reported = float(printed.split("val accuracy ")[1].split()[0])
    assert accuracy == reported  # same data, same weights: the saved adapter reproduces the run


def test_bad_input_is_one_readable_line(image_folder, tmp_path, capsys):
    (image_folder / "empty").mkdir()
    code = main(
        [
            "vision",
            "finetune",
            *TINY,
            "--data",
            str(image_folder),
            "--out",
            str(tmp_path / "o"),
            "--epochs",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "has no readable images" in err and "Traceback" not in err
    assert main(["vision", "eval", "--adapter", str(tmp_path), "--data", str(image_folder)]) == 2
    assert "adapter_config.json" in capsys.readouterr().err


def test_console_script_help_lists_commands():
    result = subprocess.run(
        [sys.executable, "-m", "studio", "--help"], capture_output=True, text=True, check=True
    )
    assert "vision" in result.stdout and "demo" in result.stdout
