"""Adapters are written only when finite, and `load_adapter` is all or nothing: a failed load leaves the model's
weights, modules and trainable flags exactly as they were."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

import vision
from studio.core import get_adapter_state, inject, load_adapter, save_adapter, save_tensors
from tests.conftest import make_tiny_vit

WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"


def snapshot(model: torch.nn.Module) -> dict:
    """Everything a load may change: values of every tensor, the module tree, trainable flags, the adapter."""
    return {
        "tensors": {k: v.clone() for k, v in model.state_dict().items()},
        "modules": [(name, type(m).__name__) for name, m in model.named_modules()],
        "repr": repr(model),
        "trainable": {n: p.requires_grad for n, p in model.named_parameters()},
        "adapter": get_adapter_state(model),
    }


def assert_unchanged(model: torch.nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after["modules"] == before["modules"]
    assert after["repr"] == before["repr"]
    assert after["trainable"] == before["trainable"]
    assert after["adapter"] is before["adapter"]
    assert after["tensors"].keys() == before["tensors"].keys()
    for key, value in before["tensors"].items():
        assert torch.equal(after["tensors"][key], value), key


@pytest.fixture
def ssf_adapter(tmp_path):
    """A saved SSF adapter of the tiny ViT with non-trivial values."""
    model = inject(make_tiny_vit(), vision.SSFConfig(init_std=0.1))
    save_adapter(model, tmp_path / "ssf")
    return tmp_path / "ssf"


def _truncate(folder):
    data = (folder / WEIGHTS).read_bytes()
    (folder / WEIGHTS).write_bytes(data[: len(data) // 2])


def _edit_tensors(folder, change):
    tensors = load_file(str(folder / WEIGHTS))
    change(tensors)
    save_file(tensors, str(folder / WEIGHTS))


def _wrong_shape(folder):
    _edit_tensors(folder, lambda t: t.update({"head.weight": torch.zeros(5, 48)}))


def _missing_key(folder):
    _edit_tensors(folder, lambda t: t.pop(next(k for k in t if k != "head.weight")))


def _non_finite(folder):
    def poison(tensors):
        key = next(k for k in tensors if k != "head.weight")
        tensors[key] = torch.full_like(tensors[key], math.nan)

    _edit_tensors(folder, poison)


def _other_method(folder):
    """The config says LoRA, the tensors are SSF's."""
    config = json.loads((folder / CONFIG).read_text())
    config["method"], config["config"] = "lora", vision.LoRAConfig().to_dict()
    (folder / CONFIG).write_text(json.dumps(config))


def _wrong_config_type(folder):
    config = json.loads((folder / CONFIG).read_text())
    config["config"]["init_std"] = "abc"
    (folder / CONFIG).write_text(json.dumps(config))


def _wrong_dtype(folder):
    _edit_tensors(folder, lambda t: t.update({"head.bias": torch.zeros(3, dtype=torch.int64)}))


DAMAGES = {
    "truncated file": (_truncate, "not a readable adapter weights file"),
    "wrong shapes": (_wrong_shape, "has shape"),
    "missing key": (_missing_key, "lacks tensor"),
    "non-finite tensor": (_non_finite, "NaN or infinite"),
    "another method": (_other_method, "does not have"),
    "config with wrong types": (_wrong_config_type, "init_std must be a number"),
    "wrong dtype": (_wrong_dtype, "dtype"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_failed_load_leaves_a_fresh_model_untouched(ssf_adapter, damage):
    change, message = DAMAGES[damage]
    change(ssf_adapter)
    model = make_tiny_vit(seed=1)
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        load_adapter(model, ssf_adapter)
    assert_unchanged(model, before)


@pytest.mark.parametrize("damage", ["wrong shapes", "missing key", "non-finite tensor", "wrong dtype"])
def test_failed_load_leaves_a_model_with_the_adapter_untouched(ssf_adapter, damage):
    change, message = DAMAGES[damage]
    change(ssf_adapter)
    model = inject(make_tiny_vit(seed=1), vision.SSFConfig(init_std=0.3))
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        load_adapter(model, ssf_adapter)
    assert_unchanged(model, before)


def test_a_good_load_still_reproduces_the_outputs(tmp_path):
    trained = inject(make_tiny_vit(), vision.SSFConfig(init_std=0.1))
    save_adapter(trained, tmp_path / "ssf")
    loaded = load_adapter(make_tiny_vit(), tmp_path / "ssf")
    images = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded.eval()(images), trained.eval()(images))


def test_a_non_finite_adapter_is_never_written(tmp_path):
    model = inject(make_tiny_vit(), vision.SSFConfig())
    name = get_adapter_state(model).trainable[0]
    with torch.no_grad():
        model.get_parameter(name).fill_(math.inf)
    with pytest.raises(ValueError, match=f"tensor '{name}' holds NaN or infinite values"):
        save_adapter(model, tmp_path / "bad")
    assert not (tmp_path / "bad" / WEIGHTS).exists() and not (tmp_path / "bad" / CONFIG).exists()


def test_no_artifact_file_is_written_with_nan(tmp_path):
    """`save_tensors` writes every artifact (Textual Inversion embeddings, few-shot classifiers, IP-Adapters)."""
    with pytest.raises(ValueError, match="tensor '<cat>' holds NaN"):
        save_tensors(tmp_path / "learned_embeds.safetensors", {"<cat>": torch.tensor([[0.0, math.nan]])})
    assert not list(tmp_path.iterdir())
