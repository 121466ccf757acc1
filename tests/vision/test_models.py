"""create_model: random, local checkpoints (safetensors / tensor-only .pth), head reset, clear errors."""

import pickle

import pytest
import torch
from safetensors.torch import save_file

import vision
from tests.conftest import TINY_VIT

X = torch.randn(2, 3, 32, 32)


def test_local_safetensors_loads_backbone_and_resets_head(tiny_vit, tmp_path):
    source = tiny_vit(num_classes=7).eval()
    save_file(source.state_dict(), str(tmp_path / "w.safetensors"))
    same = vision.create_model(
        "vit_small_patch16_224", pretrained=tmp_path / "w.safetensors", **TINY_VIT
    ).eval()
    assert same.num_classes == 7
    torch.testing.assert_close(same(X), source(X))
    new_head = vision.create_model(
        "vit_small_patch16_224", num_classes=3, pretrained=str(tmp_path / "w.safetensors"), **TINY_VIT
    ).eval()
    assert new_head.num_classes == 3
    torch.testing.assert_close(new_head.forward_features(X), source.forward_features(X))
    assert new_head.base_model_id == "vit_small_patch16_224"


def test_tensor_only_pth_loads_but_pickled_objects_are_refused(tiny_vit, tmp_path):
    source = tiny_vit(num_classes=3, seed=1)  # other weights than a fresh model's
    state = source.state_dict()
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pth"
    )  # as DDP saves
    loaded = vision.create_model("vit_small_patch16_224", pretrained=tmp_path / "w.pth", **TINY_VIT)
    assert loaded.state_dict().keys() == state.keys()
    for key, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, state[key]), key
    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"state_dict": {"x": object()}}, f)
    with pytest.raises(ValueError, match="refusing to unpickle"):
        vision.create_model("vit_small_patch16_224", pretrained=tmp_path / "evil.pth", **TINY_VIT)


def test_checkpoint_of_another_architecture_names_the_tensor(tiny_vit, tmp_path):
    save_file(tiny_vit(embed_dim=64).state_dict(), str(tmp_path / "w.safetensors"))
    with pytest.raises(ValueError, match=r"tensor '.+' has shape .*64"):
        vision.create_model("vit_small_patch16_224", pretrained=tmp_path / "w.safetensors", **TINY_VIT)


def test_missing_file_and_unknown_model(tmp_path):
    with pytest.raises(FileNotFoundError):
        vision.create_model("vit_small_patch16_224", pretrained=tmp_path / "nope.safetensors")
    with pytest.raises(ValueError, match="unknown timm model"):
        vision.create_model("vit_gigantic_patch99", num_classes=2)


def test_transforms_use_the_built_input_size(tiny_vit):
    from PIL import Image

    model = tiny_vit()
    assert vision.data_config(model)["input_size"] == (3, 32, 32)
    assert vision.image_transform(model)(Image.new("RGB", (50, 70))).shape == (3, 32, 32)
    assert vision.image_transform(model, augment=True)(Image.new("RGB", (50, 70))).shape == (3, 32, 32)
