"""The bundled reference ViT `studio/shapes-vit`: offline loading, head reset, errors, and its accuracy.

The asset is committed, so a missing file fails these tests instead of skipping them.
"""

import numpy as np
import pytest
import torch

import vision
from studio.core import resolve_asset
from studio.world import COLOURS, PRETRAIN_SHAPES, render, sample_scenes
from studio.world.vocab import is_heldout

NAME = "studio/shapes-vit"
CLASSES = [f"{c} {s}" for s in PRETRAIN_SHAPES for c in COLOURS if not is_heldout(s, c)]


def test_asset_files_are_committed():
    folder = resolve_asset(NAME)
    for file in ("model.safetensors", "config.json", "metrics.json"):
        assert (folder / file).is_file(), f"{folder / file} is missing; run assets/recipes/shapes_vit.py"
    assert (folder / "model.safetensors").stat().st_size <= 6 * 2**20


def test_loads_offline_with_class_names_and_data_config():
    model = vision.create_model(NAME, pretrained=True).eval()
    assert model.base_model_id == NAME
    assert model.pretrained_cfg["label_names"] == CLASSES
    assert model.num_classes == len(CLASSES)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert vision.data_config(model)["input_size"] == (3, 64, 64)
    image = render(sample_scenes(1, seed=3, shape="square", colour="red")[0], size=64, seed=3)
    logits = model(vision.image_transform(model)(image)[None])
    assert logits.shape == (1, len(CLASSES))
    assert CLASSES[logits.argmax().item()] == "red square"


def test_random_weights_differ_from_pretrained():
    torch.manual_seed(0)
    random = vision.create_model(NAME, pretrained=False)
    trained = vision.create_model(NAME, pretrained=True)
    assert not torch.equal(random.patch_embed.proj.weight, trained.patch_embed.proj.weight)


def test_num_classes_resets_the_head_but_keeps_the_backbone():
    x = torch.randn(2, 3, 64, 64)
    full = vision.create_model(NAME, pretrained=True).eval()
    five = vision.create_model(NAME, num_classes=5, pretrained=True).eval()
    assert five(x).shape == (2, 5)
    assert "label_names" not in five.pretrained_cfg  # they named the old head's outputs
    torch.testing.assert_close(five.forward_features(x), full.forward_features(x))


def test_unknown_bundled_model_and_file_path_are_clear_errors():
    with pytest.raises(FileNotFoundError, match="studio/shapes-vit"):  # the message lists what exists
        vision.create_model("studio/no-such-model", pretrained=True)
    with pytest.raises(ValueError, match="bundled model"):
        vision.create_model(NAME, pretrained="weights.safetensors")


@pytest.mark.slow
def test_accuracy_on_freshly_rendered_images():
    model = vision.create_model(NAME, pretrained=True).eval()
    transform, images, labels = vision.image_transform(model), [], []
    for label, name in enumerate(CLASSES):
        colour, shape = name.split()
        for i, scene in enumerate(sample_scenes(20, seed=1000 + label, shape=shape, colour=colour)):
            images.append(transform(render(scene, size=64, seed=10_000 + 100 * label + i)))
            labels.append(label)
    with torch.inference_mode():
        predicted = torch.cat(
            [model(torch.stack(images[i : i + 256])).argmax(-1) for i in range(0, len(images), 256)]
        )
    accuracy = np.mean(predicted.numpy() == np.array(labels))
    assert accuracy >= 0.95, f"joint shape+colour accuracy {accuracy:.3f}"
