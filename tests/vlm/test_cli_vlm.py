"""`studio vlm fit|predict` on a tiny open_clip model saved as a `local-dir:` folder."""

from __future__ import annotations

import json
import re

import pytest

import vlm
from studio.cli import main
from studio.core import method_configs, method_names
from tests.vlm.tiny import save_tiny_clip


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A tiny random CLIP in open_clip's local-dir format: `open_clip_config.json` + safetensors weights."""
    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


def fit_args(model: str, data, out, *extra: str) -> list[str]:
    return ["vlm", "fit", "--model", model, "--data", str(data), "--out", str(out), "--templates", "single",
            *extra]  # fmt: skip


def test_fit_then_predict(tiny_model_dir, image_folder, tmp_path, capsys):
    out = tmp_path / "clf"
    args = fit_args(tiny_model_dir, image_folder, out, "--method", "tip_adapter", "--shots", "3")
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "tip_adapter: 3 classes, 9 images" in printed and "alpha=" in printed
    saved = json.loads((out / "adapter_config.json").read_text())
    assert (
        saved["metadata"]["classnames"] == ["circle", "square", "stripes"]
        and saved["base_model"] == tiny_model_dir
    )

    images = sorted(str(p) for p in image_folder.rglob("*.png"))
    assert main(["vlm", "predict", "--model-dir", str(out), *images]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    expected = vlm.FewShotCLIP.load(out, cache_dir=False)
    proba = expected.predict_proba(images)
    assert len(lines) == len(images)
    for line, path, row in zip(lines, images, proba, strict=True):
        name, label, probability = line.split("\t")
        assert name == path and label == expected.classnames[row.argmax()]
        assert float(probability) == pytest.approx(row.max(), abs=1e-4)


def test_method_options_pass_through(tiny_model_dir, image_folder, tmp_path, capsys):
    out = tmp_path / "coop"
    args = fit_args(tiny_model_dir, image_folder, out, "--method", "coop", "--set", "epochs=2", "--set", "n_ctx=2",
                    "--set", "ctx_init=")  # fmt: skip
    assert main(args) == 0
    config = json.loads((out / "adapter_config.json").read_text())["config"]
    assert config["epochs"] == 2 and config["n_ctx"] == 2 and config["ctx_init"] == ""


def test_bad_input_is_one_readable_line(tiny_model_dir, image_folder, tmp_path, capsys):
    assert main(fit_args(tiny_model_dir, image_folder, tmp_path / "o", "--set", "alpha_grids=[1]")) == 2
    err = capsys.readouterr().err
    assert "unknown TipAdapterConfig fields ['alpha_grids']; known fields: ['alpha', 'alpha_grid'" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1

    with pytest.raises(SystemExit, match="2"):
        main(fit_args(tiny_model_dir, image_folder, tmp_path / "o", "--method", "magic"))
    assert (
        "invalid choice: 'magic' (choose from 'clip_adapter', 'cocoop', 'coop', 'linear_probe'"
        in capsys.readouterr().err
    )

    (image_folder / "empty").mkdir()
    assert main(fit_args(tiny_model_dir, image_folder, tmp_path / "o")) == 2
    assert "has no readable images" in capsys.readouterr().err

    assert main(["vlm", "predict", "--model-dir", str(tmp_path / "missing"), "x.png"]) == 2
    assert "adapter_config.json" in capsys.readouterr().err


def test_predict_rejects_a_non_image(tiny_model_dir, image_folder, tmp_path, capsys):
    out = tmp_path / "zs"
    assert main(fit_args(tiny_model_dir, image_folder, out, "--method", "zero_shot")) == 0
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    assert main(["vlm", "predict", "--model-dir", str(out), str(notes)]) == 2
    assert "notes.png is not a readable image file" in capsys.readouterr().err


def test_help_offers_exactly_the_registered_methods(capsys):
    with pytest.raises(SystemExit):
        main(["vlm", "fit", "--help"])
    shown = capsys.readouterr().out
    choices = re.search(r"--method \{([^}]*)\}", shown).group(1).split(",")
    listed = re.findall(r"^  (\w+): ", shown.split("methods and their options")[1], flags=re.M)
    assert choices == listed == method_names("vlm", "fewshot")
    assert "n_ctx=4" in shown and "augment_views=0" in shown  # every method's options, with defaults
    assert set(method_configs("vlm", "fewshot")) >= {"zero_shot", "linear_probe", "coop", "tip_adapter"}
