"""`studio diffusion train-control` trains and saves a control artifact; bad input is one readable line."""

import pytest
from diffusers import T2IAdapter

import diffusion
from diffusion.artifacts import read_artifact
from studio.cli import main
from studio.core import method_configs
from studio.world import Scene
from tests.diffusion.tiny import write_control_pairs
from tests.diffusion.toy_control import register_toy_control


def _help(capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(["diffusion", "train-control", "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_help_offers_every_registered_control_method_with_its_options(capsys, scratch_registry):
    """What the registry holds is what `--method` accepts and the help lists: a newly registered method too."""
    toy = register_toy_control()
    text = _help(capsys)
    configs = method_configs("diffusion", "control")
    assert toy in configs and {"controlnet", "t2i_adapter", "ip_adapter"} <= set(configs)
    assert "--method {" + ",".join(configs) + "}" in text
    for name, cls in configs.items():
        assert f"  {name}: lr={cls().lr!r}" in text
    assert "toy_option=1" in text


def test_a_newly_registered_control_method_trains_from_the_shell_and_samples(
    tiny_sd_dir, tiny_pipe, tmp_path, capsys, scratch_registry
):
    """Adding a control method is its config and one registration: the CLI trains it, with its own option
    reaching the artifact, and `generate` samples with it."""
    toy = register_toy_control()
    data = tmp_path / "data"
    write_control_pairs(data, [Scene("circle", "red"), Scene("square", "red")], conditions=False)
    out = tmp_path / "toy"
    code = main(
        ["diffusion", "train-control", "--model", str(tiny_sd_dir), "--data", str(data), "--method", toy,
         "--condition", "canny", "--set", "toy_option=3", "--set", "lr=0.002", "--steps", "1",
         "--batch-size", "2", "--out", str(out)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    info = read_artifact(out)
    assert info.kind == toy and info.is_control
    assert info.hyperparameters["toy_option"] == 3 and info.hyperparameters["lr"] == 0.002
    images = diffusion.generate(
        tiny_pipe, "a red circle", adapters=[out], control_image=data / "000.png", num_inference_steps=1
    )
    assert len(images) == 1 and images[0].size == (16, 16)


def test_a_bad_method_option_is_one_line_before_the_pipeline_loads(tmp_path, capsys):
    code = main(
        ["diffusion", "train-control", "--model", str(tmp_path / "no-such-model"), "--data", str(tmp_path),
         "--method", "t2i_adapter", "--set", "rank=4", "--out", str(tmp_path / "out")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("studio: error: unknown T2IAdapterConfig fields ['rank']")


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
