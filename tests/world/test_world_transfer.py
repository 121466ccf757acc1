"""The few-shot transfer tasks: known shapes in a shifted style, and base/new class subsets."""

from __future__ import annotations

import numpy as np
import pytest

from studio.world import PRETRAIN_SHAPES, shape_classification
from studio.world.transfer import SHIFTS, class_subset, shifted_shape_task


def test_a_shifted_task_draws_the_known_shapes_in_the_new_style():
    plain = shape_classification(1, 0, 0, seed=3)
    shifted = shifted_shape_task("negative", shots=1, val_per_class=0, test_per_class=2, seed=3)
    assert shifted.classes == list(PRETRAIN_SHAPES) and len(shifted.test) == 2 * len(PRETRAIN_SHAPES)
    # the same scenes as the plain task, inverted
    for (image, label), (original, same) in zip(shifted.train, plain.train, strict=True):
        assert label == same
        np.testing.assert_array_equal(np.asarray(image), 255 - np.asarray(original))
    with pytest.raises(ValueError, match=f"unknown shift 'sepia'; known shifts: {', '.join(SHIFTS)}"):
        shifted_shape_task("sepia")


def test_class_subset_keeps_the_images_of_those_classes_renumbered():
    task = shifted_shape_task("grey", shots=2, val_per_class=1, test_per_class=3)
    new = class_subset(task, ["ring", "circle"])
    assert new.classes == ["ring", "circle"]
    assert len(new.train) == 4 and len(new.val) == 2 and len(new.test) == 6
    rings = [image for image, label in task.test if task.classes[label] == "ring"]
    assert [image for image, label in new.test if label == 0] == rings
    with pytest.raises(ValueError, match=r"unknown classes \['star'\]"):
        class_subset(task, ["circle", "star"])
