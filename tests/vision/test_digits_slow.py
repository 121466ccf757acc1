"""Every method learns a real task: scikit-learn's handwritten digits (upsampled), from the bundled ViT.

The backbone is `studio/shapes-vit`, pretrained on the image world's shapes; digits are a new domain
for it, and each method adapts it with a fresh 10-class head from 600 training images.
"""

import pytest
import torch

import vision
from studio.core import inject
from studio.world import digits_task

pytestmark = pytest.mark.slow

LEARNING_RATES = {
    "full": 1e-3,
    "bitfit": 1e-2,
    "linear_probe": 1e-2,
    "lora": 5e-3,
    "ssf": 1e-2,
    "vpt": 1e-2,
    "adaptformer": 5e-3,
}


@pytest.fixture(scope="module")
def digits():
    """The digits task at the reference ViT's 64 px."""
    return digits_task(size=64)


@pytest.mark.parametrize("name", sorted(vision.METHOD_CONFIGS))
def test_method_learns_digits_far_above_chance(name, digits):
    torch.manual_seed(0)
    model = vision.create_model("studio/shapes-vit", pretrained=True, num_classes=10)
    inject(model, vision.METHOD_CONFIGS[name]())
    vision.finetune(
        model, digits.train[:600], epochs=3, lr=LEARNING_RATES[name], batch_size=32, progress=False
    )
    accuracy = vision.evaluate(model, digits.test, progress=False)["accuracy"]
    print(f"{name}: digits test accuracy {accuracy:.3f} (chance 0.1)")
    assert accuracy > 0.3, f"{name} reached only {accuracy:.3f} (chance is 0.1)"
