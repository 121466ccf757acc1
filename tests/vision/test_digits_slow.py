"""Every method learns a real task: scikit-learn's handwritten digits, upsampled to 32×32.

A backbone trained from random weights in a few minutes is first fully fine-tuned on digits 0–4; each
method then adapts it (loaded from a local checkpoint with a fresh head) to the unseen digits 5–9.
"""

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import save_file

import vision
from studio.core import inject

pytestmark = pytest.mark.slow

ARCH = dict(img_size=32, patch_size=4, depth=4, embed_dim=96, num_heads=3)
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
def digits(tmp_path_factory):
    """(pretrained backbone file, train pairs of digits 5–9, test pairs of digits 5–9)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = [
        Image.fromarray((x * 255 / 16).astype(np.uint8)).resize((32, 32), Image.BICUBIC) for x in data.images
    ]
    pairs = list(zip(images, data.target.tolist(), strict=True))
    seen = [(image, label) for image, label in pairs if label < 5]
    novel = [(image, label - 5) for image, label in pairs if label >= 5]
    backbone = vision.create_model("vit_small_patch16_224", num_classes=5, **ARCH)
    inject(backbone, vision.FullFinetuneConfig())
    vision.finetune(backbone, seen, epochs=15, lr=2e-3, batch_size=32, progress=False)
    file = tmp_path_factory.mktemp("backbone") / "digits-0-4.safetensors"
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(file))
    return file, novel[:600], novel[600:]


@pytest.mark.parametrize("name", sorted(vision.METHOD_CONFIGS))
def test_method_transfers_to_unseen_digits(name, digits):
    backbone, train, test = digits
    model = vision.create_model("vit_small_patch16_224", num_classes=5, pretrained=backbone, **ARCH)
    inject(model, vision.METHOD_CONFIGS[name]())
    vision.finetune(model, train, epochs=5, lr=LEARNING_RATES[name], batch_size=32, progress=False)
    accuracy = vision.evaluate(model, test, progress=False)["accuracy"]
    print(f"{name}: accuracy on unseen digits 5-9 {accuracy:.3f} (chance 0.2)")
    assert accuracy > 0.5, f"{name} reached only {accuracy:.3f} (chance is 0.2)"
