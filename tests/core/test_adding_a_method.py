"""Adding a method is one folder plus one `register_method` call: the CLI, the studio and the core find it."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import gradio as gr
import pytest
import torch

from studio.cli import main
from studio.core import get_method, inject, load_adapter, method_names, save_adapter
from studio.ui import build_app
from tests.conftest import make_tiny_vit

TOY = "tests.core.toy_method"


@pytest.fixture
def toy(monkeypatch, scratch_registry):
    """The toy method registered for one test, on a copy of the registry that the test's end throws away."""
    monkeypatch.delitem(sys.modules, TOY, raising=False)
    yield importlib.import_module(TOY)
    sys.modules.pop(TOY, None)


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def _method_choices(app: gr.Blocks) -> list[str]:
    dropdowns = [b for b in app.blocks.values() if isinstance(b, gr.Dropdown) and b.label == "method"]
    vit = [d for d in dropdowns if "ssf" in [value for _, value in d.choices]]
    assert len(vit) == 1
    return [value for _, value in vit[0].choices]


def test_without_the_registration_nothing_knows_the_toy(capsys):
    assert "block_gate" not in method_names("vision")
    assert "block_gate" not in _help(capsys, "vision", "finetune")


def test_the_cli_offers_the_toy_with_its_options(toy, capsys):
    text = _help(capsys, "vision", "finetune")
    assert "block_gate: frozen_eval=False, init=0.0" in text
    assert (
        main(
            ["vision", "finetune", "--method", "block_gate", "--set", "init=-5", "--data", "x", "--out", "y"]
        )
        == 2
    )
    assert "init must be in [-0.99, inf], got -5.0" in capsys.readouterr().err


def test_the_studio_offers_the_toy_and_its_form(toy, tmp_path):
    app = build_app(workspace=tmp_path / "ws")
    assert _method_choices(app) == method_names("vision", "finetune")
    assert "block_gate" in _method_choices(app)
    accordions = [b.label for b in app.blocks.values() if isinstance(b, gr.Accordion)]
    assert "block_gate options" in accordions


def test_the_toy_injects_trains_only_its_gates_and_round_trips(toy, tmp_path):
    assert get_method("block_gate", "vision").config_cls is toy.BlockGateConfig
    model, base = make_tiny_vit(), make_tiny_vit()
    inject(model, toy.BlockGateConfig())
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model.eval()(x), base.eval()(x))  # gates start at 0
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {n for n in trainable if not n.startswith("head.")} == {
        f"blocks.{i}.gate" for i in range(len(model.blocks))
    }
    with torch.no_grad():
        for i in range(len(model.blocks)):
            model.blocks[i].gate.fill_(0.5 + i)
    save_adapter(model, tmp_path / "gate")
    restored = load_adapter(make_tiny_vit(), tmp_path / "gate")
    assert torch.equal(restored.eval()(x), model(x))
    assert Path(tmp_path / "gate" / "adapter_config.json").read_text().count('"domain": "vision"') == 1
