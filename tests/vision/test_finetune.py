"""vision.finetune / evaluate on the engine: exact resume, callbacks, clear errors."""

import pytest
import torch

import vision
from studio.core import inject
from tests.helpers import StopAt


def _run(tiny_vit, data, out, **kwargs):
    model = inject(tiny_vit(), vision.VPTConfig(num_tokens=2, dropout=0.1))
    settings = dict(epochs=3, lr=0.05, batch_size=4, augment=True, output_dir=out, progress=False)
    result = vision.finetune(model, data, **{**settings, **kwargs})
    return model, result


def test_stopped_then_resumed_equals_uninterrupted(tiny_vit, image_folder, tmp_path):
    full, full_result = _run(tiny_vit, image_folder, tmp_path / "a")
    _, stopped = _run(tiny_vit, image_folder, tmp_path / "b", callbacks=[StopAt(4)])
    assert stopped.stopped and stopped.steps == 4
    resumed, resumed_result = _run(tiny_vit, image_folder, tmp_path / "b", resume=True)
    assert resumed_result.steps == full_result.steps == 9
    for (name, p), q in zip(full.named_parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0, msg=name)


def test_training_reduces_loss_and_reports_validation(tiny_vit, image_folder):
    model = inject(tiny_vit(), vision.SSFConfig())
    untrained = vision.evaluate(model, image_folder, progress=False)["accuracy"]
    result = vision.finetune(
        model, image_folder, image_folder, epochs=6, lr=0.02, batch_size=4, progress=False
    )
    losses = [h["loss"] for h in result.history]
    assert sum(losses[-3:]) < sum(losses[:3])
    assert len(result.evals) == 6
    # 12 images of 3 colour-coded classes (chance 1/3): measured 0.33 untrained, 0.67 after 6 epochs
    assert result.evals[-1]["accuracy"] >= 0.6 and result.evals[-1]["accuracy"] > untrained
    assert vision.evaluate(model, image_folder, progress=False)["accuracy"] == result.evals[-1]["accuracy"]


def test_class_count_mismatch_and_missing_adapter(tiny_vit, image_folder):
    with pytest.raises(ValueError, match="3 classes but the model's head has 5"):
        vision.finetune(inject(tiny_vit(num_classes=5), vision.SSFConfig()), image_folder, epochs=1)
    with pytest.raises(ValueError, match="call studio.core.inject"):
        vision.finetune(tiny_vit(), image_folder, epochs=1)


def test_evaluate_returns_the_predictions_its_accuracy_counts(tiny_vit, image_folder):
    model = tiny_vit()
    scores = vision.evaluate(model, image_folder, progress=False, predictions=True)
    pairs = scores["predictions"]
    assert len(pairs) == scores["n"] == 12
    # one pair per image, in the folder's order
    assert [true for true, _ in pairs] == [0] * 4 + [1] * 4 + [2] * 4
    assert sum(true == predicted for true, predicted in pairs) / len(pairs) == scores["accuracy"]
    assert "predictions" not in vision.evaluate(model, image_folder, progress=False)
