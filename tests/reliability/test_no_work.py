"""Runs that would do no work, or learn nothing, are refused with a clear error instead of reporting success."""

import pytest

from studio.cli import main
from studio.engine import train
from tests.conftest import write_image_folder
from tests.engine.ddp_script import make_data, make_model, mse_loss


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"max_steps": 0}, "max_steps must be an integer >= 1, got 0"),
        ({"max_steps": -3}, "max_steps must be an integer >= 1, got -3"),
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ],
)
def test_engine_refuses_a_run_without_steps(tmp_path, option, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        train(make_model(), make_data(), mse_loss, **{"progress": False, **option}, output_dir=tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_finetune_refuses_zero_epochs_and_one_class(tiny_vit, image_folder, tmp_path):
    from studio.core import inject
    from vision import SSFConfig, finetune

    with pytest.raises(ValueError, match="^epochs must be an integer >= 1, got 0"):
        finetune(inject(tiny_vit(), SSFConfig()), image_folder, epochs=0, progress=False)
    one_class = write_image_folder(tmp_path / "one", classes=("circle",))
    with pytest.raises(ValueError, match=r"only one class \('circle'\).*at least two"):
        finetune(inject(tiny_vit(num_classes=1), SSFConfig()), one_class, epochs=1, progress=False)
    pairs = [(str(p), 2) for p in sorted((image_folder / "square").iterdir())]
    with pytest.raises(ValueError, match=r"only one class \('2'\)"):
        finetune(inject(tiny_vit(), SSFConfig()), pairs, epochs=1, progress=False)


def test_cli_finetune_with_zero_epochs_is_one_error_line(image_folder, tmp_path, capsys):
    argv = ["vision", "finetune", "--model", "vit_small_patch16_224", "--pretrained", "none"]
    argv += ["--timm-arg", "img_size=32", "--timm-arg", "patch_size=8", "--timm-arg", "depth=1"]
    argv += ["--data", str(image_folder), "--out", str(tmp_path / "out"), "--epochs", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["studio: error: epochs must be an integer >= 1, got 0"]


def test_personalize_refuses_negative_steps_and_nan_lr(tmp_path):
    import diffusion

    # Refused before the pipeline is touched: no model is needed to see the error.
    with pytest.raises(ValueError, match="^steps must be an integer >= 1, got -5"):
        diffusion.personalize(None, [], steps=-5, output_dir=tmp_path)
    with pytest.raises(ValueError, match="^lr must be a finite number, got inf"):
        diffusion.personalize(None, [], lr=float("inf"), output_dir=tmp_path)
    with pytest.raises(ValueError, match="^lr_norm must be a finite number, got nan"):
        diffusion.personalize(None, [], method="svdiff", lr_norm=float("nan"), output_dir=tmp_path)


def test_few_shot_classifier_refuses_one_class():
    from tests.vlm.test_fewshot_clip import images, tiny_clip
    from vlm.classifier import FewShotCLIP

    pictures, labels = images(2)
    red = [(p, label) for p, label in zip(pictures, labels, strict=True) if label == "red"]
    for method in ("linear_probe", "coop", "tip_adapter_f"):
        clf = FewShotCLIP.from_model(*tiny_clip(), method=method, cache_dir=False)
        with pytest.raises(ValueError, match=r"only one class \('red'\).*at least two"):
            clf.fit([p for p, _ in red], [label for _, label in red])
