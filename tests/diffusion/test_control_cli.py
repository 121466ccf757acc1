"""`studio diffusion train-control` trains and saves a control artifact; bad input is one readable line."""

from diffusers import T2IAdapter

from diffusion.artifacts import read_artifact
from studio.cli import main
from studio.world import Scene
from tests.diffusion.tiny import write_control_pairs


def test_train_control_from_the_shell(tiny_sd_dir, tmp_path, capsys):
    data = tmp_path / "data"
    write_control_pairs(data, [Scene("circle", "red"), Scene("square", "red")], conditions=False)
    out = tmp_path / "t2i"
    code = main(
        ["diffusion", "train-control", "--model", str(tiny_sd_dir), "--data", str(data), "--method", "t2i_adapter",
         "--condition", "canny", "--condition-param", "low_threshold=20", "--set", "lr=0.001",
         "--set", "early_timesteps=false", "--steps", "1", "--batch-size", "2", "--out", str(out)]
    )  # fmt: skip
    assert code == 0 and f"artifact: {out}" in capsys.readouterr().out
    info = read_artifact(out)
    assert info.kind == "t2i_adapter" and info.extra["condition_params"] == {"low_threshold": 20}
    assert info.hyperparameters["lr"] == 0.001 and info.hyperparameters["early_timesteps"] is False
    assert isinstance(T2IAdapter.from_pretrained(out), T2IAdapter)


def test_train_control_without_conditions_is_a_readable_error(tiny_sd_dir, tmp_path, capsys):
    data = tmp_path / "data"
    write_control_pairs(data, [Scene("circle", "red")], conditions=False)
    code = main(
        ["diffusion", "train-control", "--model", str(tiny_sd_dir), "--data", str(data), "--steps", "1",
         "--out", str(tmp_path / "cn")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "studio: error:" in err and "condition" in err and "Traceback" not in err
