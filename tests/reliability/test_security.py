"""Security details: the login stays out of `ps`, an exposed studio without login warns, adapter metadata cannot
make timm open files, and torch is new enough that `torch.load` refuses pickled code by default."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import timm
import tomllib
import torch
import torchvision
from packaging.requirements import Requirement
from packaging.version import Version

import vision
from studio.cli import main
from studio.core import inject, save_adapter
from tests.conftest import TINY_VIT

ROOT = Path(__file__).resolve().parents[2]
launch_module = importlib.import_module("studio.ui.launch")  # `studio.ui.launch` is also a function


class Built(Exception):
    """Raised instead of building the app: the test stops right after the checks that come before it."""


@pytest.fixture
def no_build(monkeypatch):
    """`studio ui` up to the slow build, with what `launch` was given recorded."""
    seen = {}

    def build_app(*args, **kwargs):
        raise Built

    real_parse = launch_module.parse_auth

    def parse_auth(text):
        seen["auth"] = real_parse(text)
        return seen["auth"]

    monkeypatch.setattr(launch_module, "build_app", build_app)
    monkeypatch.setattr(launch_module, "parse_auth", parse_auth)
    monkeypatch.delenv("STUDIO_AUTH", raising=False)
    return seen


def test_login_from_a_file_or_the_environment(no_build, tmp_path, monkeypatch):
    secret = tmp_path / "login"
    secret.write_text("ann:s3cret\n")
    with pytest.raises(Built):
        main(["ui", "--auth-file", str(secret)])
    assert no_build["auth"] == ("ann", "s3cret")
    monkeypatch.setenv("STUDIO_AUTH", "bob:hunter2")
    with pytest.raises(Built):
        main(["ui"])
    assert no_build["auth"] == ("bob", "hunter2")


def test_login_options_are_documented_and_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["ui", "--help"])
    ui_help = capsys.readouterr().out
    assert "--auth-file" in ui_help and "STUDIO_AUTH" in ui_help and "ps" in ui_help
    (tmp_path / "login").write_text("a:b")
    assert main(["ui", "--auth", "a:b", "--auth-file", str(tmp_path / "login")]) == 2
    assert "--auth or --auth-file, not both" in capsys.readouterr().err
    (tmp_path / "empty").write_text("")
    assert main(["ui", "--auth-file", str(tmp_path / "empty")]) == 2
    assert "is empty" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "warned"),
    [
        (["--host", "0.0.0.0"], True),
        (["--host", "192.0.2.7"], True),
        (["--share"], True),
        (["--host", "0.0.0.0", "--auth", "a:b"], False),
        ([], False),
        (["--host", "localhost"], False),
        (["--host", "::1"], False),
    ],
)
def test_an_exposed_studio_without_login_warns_once(no_build, args, warned, capsys):
    with pytest.raises(Built):
        main(["ui", *args])
    err = capsys.readouterr().err
    assert err.count("can download every file in the workspace") == (1 if warned else 0), err


@pytest.fixture
def adapter(tmp_path) -> Path:
    torch.manual_seed(0)
    model = vision.create_model("vit_small_patch16_224", num_classes=2, **TINY_VIT)
    inject(model, vision.SSFConfig())
    metadata = {"classes": ["a", "b"], "timm_args": {**TINY_VIT, "checkpoint_path": "/etc/hostname"}}
    return save_adapter(model, tmp_path / "adapter", metadata=metadata)


def test_adapter_metadata_cannot_pass_file_arguments_to_timm(adapter, image_folder, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(timm, "create_model", lambda *a, **k: calls.append(k))
    assert main(["vision", "eval", "--adapter", str(adapter), "--data", str(image_folder)]) == 2
    err = capsys.readouterr().err
    assert "timm argument 'checkpoint_path' is not allowed" in err and "adapter (metadata timm_args)" in err
    assert calls == []  # refused before timm saw anything


def test_timm_arguments_are_allowlisted(image_folder, tmp_path, capsys):
    for key in ("checkpoint_path=/etc/hostname", "pretrained_cfg_overlay={}", "cache_dir=/tmp"):
        args = ["vision", "finetune", "--timm-arg", key, "--data", str(image_folder), "--out", str(tmp_path)]
        assert main(args) == 2
        assert f"timm argument '{key.split('=')[0]}' is not allowed" in capsys.readouterr().err
    assert vision.check_timm_args({"img_size": 32, "mlp_ratio": 2}) == {"img_size": 32, "mlp_ratio": 2.0}
    with pytest.raises(ValueError, match="expected keyword-value pairs"):
        vision.check_timm_args(["img_size"])


def _requirement(name: str) -> Requirement:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(r for r in map(Requirement, deps) if r.name == name)


@pytest.mark.parametrize(("name", "module"), [("torch", torch), ("torchvision", torchvision)])
def test_the_torch_floor_is_a_tested_version(name, module):
    """The floor is the version the tests run on, and torch's floor is past 2.6 (`weights_only=True` default)."""
    spec = _requirement(name).specifier
    floors = [Version(s.version) for s in spec if s.operator in (">=", "==")]
    installed = Version(Version(module.__version__).base_version)
    assert floors and min(floors) >= installed, f"{name}: floor {floors} below the tested {installed}"
    assert installed in spec
    if name == "torch":
        assert min(floors) >= Version("2.6")
