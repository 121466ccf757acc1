"""Every method learns a real task: scikit-learn's handwritten digits (upsampled), from the bundled ViT.

The backbone is `studio/shapes-vit`, pretrained on the image world's shapes; digits are a new domain
for it, and each method adapts it with a fresh 10-class head from 600 training images; each must beat the
linear probe (the head alone) trained the same way.
"""

import pytest
import torch

import vision
from studio.core import inject, method_configs
from studio.world import digits_task

pytestmark = pytest.mark.slow

LEARNING_RATES = {
    "full": 1e-3,
    "bitfit": 1e-2,
    "linear_probe": 1e-2,
    "lora": 5e-3,
    "ssf": 1e-2,
    "vpt": 1e-2,
    "adaptformer": 1e-2,
}


@pytest.fixture(scope="module")
def digits():
    """The digits task at the reference ViT's 64 px."""
    return digits_task(size=64)


def train_and_evaluate(name: str, digits, train_size: int = 600, epochs: int = 3) -> float:
    """Adapt the bundled ViT with method `name` (fresh 10-class head, seed 0) and return its test accuracy."""
    torch.manual_seed(0)
    model = vision.create_model("studio/shapes-vit", pretrained=True, num_classes=10)
    inject(model, method_configs("vision")[name]())
    vision.finetune(
        model,
        digits.train[:train_size],
        epochs=epochs,
        lr=LEARNING_RATES[name],
        batch_size=32,
        progress=False,
    )
    accuracy = vision.evaluate(model, digits.test, progress=False)["accuracy"]
    print(f"{name}: digits test accuracy {accuracy:.3f} (chance 0.1)")
    return accuracy


@pytest.fixture(scope="module")
def probe_accuracy(digits):
    """The linear probe (a new head on the frozen backbone) trained the same way: what every method must beat."""
    return train_and_evaluate("linear_probe", digits)


def test_the_linear_probe_is_far_above_chance(probe_accuracy):
    assert probe_accuracy > 0.3, f"the linear probe reached only {probe_accuracy:.3f} (chance is 0.1)"


@pytest.mark.parametrize("name", sorted(set(method_configs("vision")) - {"linear_probe"}))
def test_method_beats_the_linear_probe_on_digits(name, digits, probe_accuracy):
    """An adapter that does nothing leaves only the head to learn, i.e. the linear probe: each method must add."""
    accuracy = train_and_evaluate(name, digits)
    assert accuracy > probe_accuracy + 0.02, f"{name}: {accuracy:.3f}, linear probe {probe_accuracy:.3f}"
