"""Datasets built from the world: balance, disjoint splits, the held-out split, digits, learnability."""

import hashlib
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from studio.world import (
    HELDOUT_SHAPES,
    PRETRAIN_SHAPES,
    caption_pairs,
    digits_task,
    novel_concept_task,
    shape_classification,
    write_image_folder,
)


def _digest(image) -> str:
    return hashlib.sha1(np.asarray(image).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def shapes_task():
    return shape_classification(train_per_class=40, val_per_class=5, test_per_class=20, size=32, seed=0)


def test_shape_classification_is_balanced_over_pretrain_shapes_with_disjoint_splits(shapes_task):
    assert shapes_task.classes == list(PRETRAIN_SHAPES)
    assert not set(shapes_task.classes) & set(HELDOUT_SHAPES)
    for pairs, per_class in ((shapes_task.train, 40), (shapes_task.val, 5), (shapes_task.test, 20)):
        assert Counter(label for _, label in pairs) == dict.fromkeys(range(len(PRETRAIN_SHAPES)), per_class)
        assert all(image.size == (32, 32) and image.mode == "RGB" for image, _ in pairs)
    train, test = ({_digest(image) for image, _ in pairs} for pairs in (shapes_task.train, shapes_task.test))
    assert len(train) == len(shapes_task.train) and not train & test


def test_tasks_are_deterministic_and_test_sets_do_not_depend_on_the_shots():
    a = novel_concept_task(shots=1, val_per_class=2, test_per_class=3, size=32, seed=4)
    b = novel_concept_task(shots=4, val_per_class=2, test_per_class=3, size=32, seed=4)
    c = novel_concept_task(shots=1, val_per_class=2, test_per_class=3, size=32, seed=5)
    assert [_digest(i) for i, _ in a.test] == [_digest(i) for i, _ in b.test]
    assert [_digest(i) for i, _ in a.train] == [_digest(i) for i, _ in b.train][: len(a.train)]
    assert [_digest(i) for i, _ in a.test] != [_digest(i) for i, _ in c.test]


def test_novel_concept_task_classifies_the_heldout_shapes():
    task = novel_concept_task(shots=2, val_per_class=2, test_per_class=4, size=32, seed=0)
    assert task.classes == list(HELDOUT_SHAPES) and len(task.classes) >= 4
    assert Counter(label for _, label in task.train) == dict.fromkeys(range(len(HELDOUT_SHAPES)), 2)
    assert len(task.test) == 4 * len(HELDOUT_SHAPES)


def test_caption_pairs_use_pretrain_concepts_only():
    pairs = caption_pairs(40, seed=0, size=32)
    assert len(pairs) == 40 and all(image.size == (32, 32) for image, _ in pairs)
    captions = [caption for _, caption in pairs]
    assert any(" at the " in c or " on the " in c or " in the " in c for c in captions)  # detailed ones
    assert all(c.endswith(" background") for c in captions)
    assert not any(shape in c for c in captions for shape in HELDOUT_SHAPES)
    short = [c for _, c in caption_pairs(10, seed=0, size=32, style="short")]
    assert all(len(c.split()) == 7 for c in short)  # "a red circle on a grey background"


def test_digits_task_sizes_and_labels():
    pytest.importorskip("sklearn")
    task = digits_task(seed=0, size=32)
    assert task.classes == [str(d) for d in range(10)]
    assert len(task.train) + len(task.val) + len(task.test) == 1797
    assert len(task.test) == pytest.approx(0.2 * 1797, abs=10) and len(task.val) == pytest.approx(180, abs=10)
    assert {label for _, label in task.test} == set(range(10))
    assert task.train[0][0].size == (32, 32) and task.train[0][0].mode == "RGB"
    again = digits_task(seed=0, size=32)
    assert [label for _, label in again.test] == [label for _, label in task.test]


def test_write_image_folder_round_trip(tmp_path):
    task = novel_concept_task(shots=2, val_per_class=0, test_per_class=0, size=32, seed=0)
    root = write_image_folder(task.train, task.classes, tmp_path / "data")
    assert sorted(p.name for p in root.iterdir()) == sorted(task.classes)
    files = sorted(root.glob("*/*.png"), key=lambda p: p.name)
    assert len(files) == len(task.train)
    for path, (image, label) in zip(files, task.train, strict=True):
        assert path.parent.name == task.classes[label]
        assert np.array_equal(np.asarray(Image.open(path)), np.asarray(image))


def test_shapes_are_learnable_by_a_linear_model(shapes_task):
    """A cheap sanity check: logistic regression on a colour-free silhouette beats chance clearly."""
    sklearn_linear = pytest.importorskip("sklearn.linear_model")

    def features(pairs):
        images = np.stack([np.asarray(image, dtype=np.float32) for image, _ in pairs])
        corner = images[:, :1, :1]  # the background colour, away from the object
        silhouette = np.abs(images - corner).max(-1) > 40
        return silhouette.reshape(len(pairs), -1), np.array([label for _, label in pairs])

    x, y = features(shapes_task.train)
    x_test, y_test = features(shapes_task.test)
    model = sklearn_linear.LogisticRegression(max_iter=300).fit(x, y)
    assert model.score(x_test, y_test) > 2.5 / len(shapes_task.classes)
