"""The bundled reference CLIP `studio/shapes-clip` and `vlm.create_clip` (offline, no training)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import open_clip
import pytest
import torch

import vlm
from studio.core import resolve_asset
from studio.world import Scene, render

NAME = "studio/shapes-clip"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clip():
    return vlm.create_clip(NAME)


def test_asset_is_complete_and_small():
    folder = resolve_asset(NAME)  # raises (fails, never skips) when the asset is missing
    files = {p.name for p in folder.iterdir()}
    assert {"open_clip_config.json", "open_clip_model.safetensors", "metrics.json"} <= files
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 10 * 2**20
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["recipe"].startswith("python assets/recipes/shapes_clip.py")
    assert set(metrics["zero_shot"]) >= {"shape_accuracy", "colour_accuracy", "heldout_shape_accuracy"}


def _first_image_weight(model) -> str:
    """The image tower's first weight matrix or kernel (a timm convnet's stem), whatever the architecture."""
    return next(k for k, v in model.state_dict().items() if k.startswith("visual.") and v.ndim >= 2)


def test_stock_open_clip_loads_the_folder_offline():
    local = f"local-dir:{resolve_asset(NAME)}"
    model, _, preprocess = open_clip.create_model_and_transforms(local)
    ours, _, _ = vlm.create_clip(NAME)
    for key, tensor in ours.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], tensor)
    assert preprocess(render(Scene("circle", "red"), 64)).shape == (3, 64, 64)


def test_features_have_the_embedding_shape_and_normalize(clip):
    model, preprocess, tokenizer = clip
    images = torch.stack([preprocess(render(Scene(s, "red"), 64)) for s in ("circle", "square", "ring")])
    with torch.no_grad():
        image_features = model.encode_image(images)
        text_features = model.encode_text(tokenizer(["a red circle", "a red square on a grey background"]))
    config = json.loads((resolve_asset(NAME) / "open_clip_config.json").read_text())["model_cfg"]
    assert image_features.shape == (3, config["embed_dim"])
    assert text_features.shape == (2, config["embed_dim"])
    for features in (image_features, text_features):
        assert torch.isfinite(features).all()
        norms = torch.nn.functional.normalize(features, dim=-1).norm(dim=-1)
        torch.testing.assert_close(norms, torch.ones_like(norms))
    assert image_features.dtype == torch.float32  # fp16 on disk, fp32 in memory


def test_tokenizer_works_offline_with_the_short_context(clip):
    _, _, tokenizer = clip
    tokens = tokenizer(["a small striped green ring at the top left on a teal background", "a star"])
    assert tokens.shape == (2, 32)
    assert (tokens[:, 0] == 49406).all()  # start of text
    assert (tokens == 49407).sum(dim=1).tolist() == [1, 1]  # one end of text each, within the context


def test_records_the_base_model_and_loads_trained_weights(clip):
    model, _, _ = clip
    assert model.base_model_id == NAME
    assert not model.training
    random_model, _, _ = vlm.create_clip(NAME, pretrained=False)
    assert random_model.base_model_id == NAME
    key = _first_image_weight(model)
    assert not torch.equal(random_model.state_dict()[key], model.state_dict()[key])


def test_a_local_checkpoint_loads_into_the_bundled_architecture(clip, tmp_path):
    from safetensors.torch import save_file

    random_model, _, _ = vlm.create_clip(NAME, pretrained=False)
    path = tmp_path / "random.safetensors"
    save_file({k: v.contiguous() for k, v in random_model.state_dict().items()}, str(path))
    model, _, _ = vlm.create_clip(NAME, pretrained=path)
    torch.testing.assert_close(model.state_dict()["logit_scale"], random_model.state_dict()["logit_scale"])
    key = _first_image_weight(model)
    assert torch.equal(model.state_dict()[key], random_model.state_dict()[key])
    assert model.base_pretrained == str(path)


def test_open_clip_names_pass_through():
    folder = resolve_asset(NAME)
    model, _, tokenizer = vlm.create_clip(f"local-dir:{folder}")
    assert model.base_model_id == f"local-dir:{folder}"
    assert tokenizer(["a circle"]).shape == (1, 32)


def test_unknown_names_and_missing_files_raise_clear_errors(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"no bundled model 'studio/no-such-model'.*studio/shapes-clip"
    ):
        vlm.create_clip("studio/no-such-model")
    with pytest.raises(ValueError, match="unknown open_clip model"):
        vlm.create_clip("No-Such-Arch-42")
    with pytest.raises(ValueError, match="pretrained=True is ambiguous"):
        vlm.create_clip("ViT-B-32", pretrained=True)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        vlm.create_clip(NAME, pretrained=str(tmp_path / "missing.safetensors"))


def test_a_bundled_folder_without_weights_fails_loudly(tmp_path, monkeypatch):
    folder = tmp_path / "shapes-clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text((resolve_asset(NAME) / "open_clip_config.json").read_text())
    monkeypatch.setenv("STUDIO_ASSETS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no open_clip_model.safetensors"):
        vlm.create_clip(NAME)
    model, _, _ = vlm.create_clip(
        NAME, pretrained=False
    )  # the architecture alone is enough for random weights
    assert model.base_model_id == NAME


def _recipe():
    spec = importlib.util.spec_from_file_location(
        "shapes_clip_recipe", ROOT / "assets/recipes/shapes_clip.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_zero_shot_shape_and_colour_accuracy_on_fresh_images(clip):
    """The model itself, not the numbers its recipe recorded: fresh images from a seed neither training nor
    the recipe's evaluation used (the shape floor also runs fast in tests/vlm/test_fewshot_clip.py)."""
    with torch.no_grad():
        metrics = _recipe().evaluate(*clip, per_class=20, seed=4242)
    assert metrics["shape_accuracy"] >= 0.8, metrics  # measured 0.89 (chance 1/7)
    assert metrics["colour_accuracy"] >= 0.8, metrics  # measured 1.0
