"""Every method learns a real task: scikit-learn's handwritten digits, upsampled to 32×32."""

import numpy as np
import pytest
from PIL import Image

import vision
from studio.core import inject

pytestmark = pytest.mark.slow

LEARNING_RATES = {
    "full": 1e-3,
    "bitfit": 1e-2,
    "linear_probe": 1e-2,
    "lora": 5e-3,
    "ssf": 1e-2,
    "vpt": 5e-2,
    "adaptformer": 5e-3,
}


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    images = [
        Image.fromarray((x * 255 / 16).astype(np.uint8)).resize((32, 32), Image.BICUBIC) for x in data.images
    ]
    pairs = list(zip(images, data.target.tolist(), strict=False))
    return pairs[:1200], pairs[1200:]


@pytest.mark.parametrize("name", sorted(vision.METHOD_CONFIGS))
def test_method_beats_chance_by_far(name, digits):
    train, test = digits
    model = vision.create_model(
        "vit_small_patch16_224", num_classes=10, img_size=32, patch_size=4, depth=4, embed_dim=96, num_heads=3
    )
    inject(model, vision.METHOD_CONFIGS[name]())
    vision.finetune(model, train, epochs=5, lr=LEARNING_RATES[name], batch_size=32, progress=False)
    accuracy = vision.evaluate(model, test, progress=False)["accuracy"]
    print(f"{name}: digits test accuracy {accuracy:.3f}")
    assert accuracy > 0.5, f"{name} reached only {accuracy:.3f} (chance is 0.1)"
