"""Adapter files: what they contain, and clear errors when they do not fit."""

import json

import pytest
import torch
from safetensors import safe_open

import vision
from studio.core import inject, load_adapter, save_adapter


def test_files_hold_only_adapter_and_head(tiny_vit, tmp_path):
    model = inject(tiny_vit(), vision.SSFConfig())
    save_adapter(model, tmp_path / "a")
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["method"] == "ssf"
    assert config["base_model"] == "vit_small_patch16_224"
    assert config["modules_to_save"] == ["head"]
    with safe_open(str(tmp_path / "a" / "adapter_model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert {"head.weight", "head.bias", "blocks.0.attn.qkv.scale"} <= keys
    assert not any("base_layer" in k for k in keys)
    assert not [p.name for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # no temp files left


def test_adapter_for_another_architecture_names_the_tensor(tiny_vit, tmp_path):
    save_adapter(inject(tiny_vit(embed_dim=64), vision.SSFConfig()), tmp_path / "a")
    with pytest.raises(ValueError, match=r"tensor '.+' has shape \(64,\) but the model expects \(48,\)"):
        load_adapter(tiny_vit(), tmp_path / "a")


def test_adapter_for_another_base_model_is_refused(tiny_vit, tmp_path):
    save_adapter(inject(tiny_vit(), vision.SSFConfig()), tmp_path / "a")
    other = tiny_vit()
    other.base_model_id = "deit_small_patch16_224"
    with pytest.raises(ValueError, match="trained on base model 'vit_small_patch16_224'"):
        load_adapter(other, tmp_path / "a")
    load_adapter(other, tmp_path / "a", check_base_model=False)


def test_adapter_of_another_method_is_refused(tiny_vit, tmp_path):
    save_adapter(inject(tiny_vit(), vision.VPTConfig()), tmp_path / "vpt")
    with pytest.raises(ValueError, match="'ssf' adapter; .* holds a 'vpt' adapter"):
        load_adapter(inject(tiny_vit(), vision.SSFConfig()), tmp_path / "vpt")


def test_missing_or_foreign_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        load_adapter(torch.nn.Linear(2, 2), tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"method": "dreambooth", "config": {}}))
    with pytest.raises(KeyError, match="known methods"):
        load_adapter(torch.nn.Linear(2, 2), tmp_path)


def test_head_classes_mismatch_is_named(tiny_vit, tmp_path):
    save_adapter(inject(tiny_vit(num_classes=5), vision.LoRAConfig()), tmp_path / "a")
    with pytest.raises(ValueError, match=r"'head\.(weight|bias)' has shape \(5"):
        load_adapter(tiny_vit(num_classes=3), tmp_path / "a")


def test_saved_files_get_the_usual_permissions(tiny_vit, tmp_path):
    import os

    save_adapter(inject(tiny_vit(), vision.SSFConfig()), tmp_path / "a")
    mask = os.umask(0)
    os.umask(mask)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        assert (tmp_path / "a" / name).stat().st_mode & 0o777 == 0o666 & ~mask
