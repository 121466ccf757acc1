"""The mini-VTAB-1k tasks: deterministic by seed, balanced, VTAB-1k's 800/200 split, labels that match the pixels."""

import hashlib
from collections import Counter

import numpy as np
import pytest
from scipy import ndimage

from studio.world import BACKGROUNDS, VTAB_GROUPS, VTAB_TASKS, vtab_task
from studio.world.render import render_with_conditions
from studio.world.scene import Scene
from studio.world.vtab import MAX_COUNT, ORIENTATION_JITTER, ORIENTED_SHAPES, SIZE_BINS


def _digests(pairs) -> list[str]:
    return [hashlib.sha1(np.asarray(image).tobytes()).hexdigest() for image, _ in pairs]


def _objects(image) -> tuple[np.ndarray, int]:
    """Connected regions that differ from the background colour by more than its noise."""
    pixels = np.asarray(image, np.float32)
    background = min(BACKGROUNDS.values(), key=lambda c: np.abs(pixels[0, 0] - c).sum())
    foreground = np.abs(pixels - background).max(-1) > 25
    return ndimage.label(ndimage.binary_closing(foreground, iterations=2))


def test_three_groups_of_three_tasks():
    assert {group: len(names) for group, names in VTAB_GROUPS.items()} == {
        "natural": 3,
        "specialized": 3,
        "structured": 3,
    }
    assert sorted(n for names in VTAB_GROUPS.values() for n in names) == sorted(VTAB_TASKS)


@pytest.mark.parametrize("name", list(VTAB_TASKS))
def test_task_is_deterministic_balanced_and_split_800_200(name):
    task = vtab_task(name, train=40, test=12, size=32, seed=3)
    again = vtab_task(name, train=40, test=12, size=32, seed=3)
    other = vtab_task(name, train=40, test=12, size=32, seed=4)
    assert _digests(task.train + task.val + task.test) == _digests(again.train + again.val + again.test)
    assert _digests(task.test) != _digests(other.test)
    assert (len(task.train), len(task.val), len(task.test)) == (32, 8, 12)
    assert not set(_digests(task.train + task.val)) & set(_digests(task.test))
    classes = len(task.classes)
    for pairs in (task.train + task.val, task.test):
        counts = Counter(label for _, label in pairs)
        assert set(counts) <= set(range(classes)) and max(counts.values()) - min(counts.values()) <= 1
    assert all(image.size == (32, 32) and image.mode == "RGB" for image, _ in task.train)


def test_a_larger_training_set_starts_with_the_smaller_one():
    small, large = (
        vtab_task("count", train=10, test=5, size=32),
        vtab_task("count", train=20, test=5, size=32),
    )
    assert _digests(large.train + large.val)[:10] == _digests(small.train + small.val)
    assert _digests(large.test) == _digests(small.test)


def test_unknown_task_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown mini-VTAB task 'cifar'.*'count'"):
        vtab_task("cifar")


def test_count_label_is_the_number_of_objects():
    task = vtab_task("count", train=2 * MAX_COUNT, test=0, size=64, seed=0)
    for image, label in task.train + task.val:
        assert _objects(image)[1] == int(task.classes[label])


def _skew(mask: np.ndarray) -> tuple[float, float]:
    """Direction (degrees, counter-clockwise from +x, y up) and scale-free length of the mask's third moment:
    a vector that turns with the shape, and a length that tells the shapes apart at any turn."""
    ys, xs = np.nonzero(mask)
    x, y = xs - xs.mean(), ys.mean() - ys
    r2 = x**2 + y**2
    vector = np.array([(x * r2).mean(), (y * r2).mean()])
    return np.degrees(np.arctan2(vector[1], vector[0])), np.linalg.norm(vector) / r2.mean() ** 1.5


def test_orientation_label_is_the_quarter_turn_of_the_object():
    unturned = {  # each shape's skew at no turn, from its mask
        shape: _skew(np.asarray(render_with_conditions(Scene(shape, "red"), 64, 0)["mask"]) > 127)
        for shape in ORIENTED_SHAPES
    }
    task = vtab_task("orientation", train=24, test=0, size=64, seed=0)
    for image, label in task.train + task.val:
        angle, length = _skew(_objects(image)[0] > 0)
        shape = min(unturned, key=lambda s: abs(unturned[s][1] - length))
        turn = (angle - unturned[shape][0] - 90 * label + 180) % 360 - 180
        assert abs(turn) < ORIENTATION_JITTER + 10, (label, shape, turn)


def test_size_label_is_the_size_bin_of_the_object():
    task = vtab_task("size", train=40, test=0, size=64, seed=0)
    extents: dict[int, list[float]] = {label: [] for label in range(len(SIZE_BINS) - 1)}
    for image, label in task.train + task.val:
        labels, n = _objects(image)
        assert n == 1
        ys, xs = np.nonzero(labels)
        extent = max(np.ptp(xs), np.ptp(ys)) / 64
        # The shape fills 60-80 % of its square's side.
        assert 0.5 * SIZE_BINS[label] < extent < 0.85 * SIZE_BINS[label + 1], (label, extent)
        extents[label].append(extent)
    means = [np.mean(e) for e in extents.values()]
    assert means == sorted(means)


def test_digits_are_scikit_learn_images_of_their_label():
    from sklearn.datasets import load_digits

    from studio.world.tasks import _digit_image

    digits = load_digits()
    by_class = {c: set() for c in range(10)}
    for pixels, target in zip(digits.images, digits.target, strict=True):
        by_class[target].add(np.asarray(_digit_image(pixels, 16)).tobytes())
    task = vtab_task("digits", train=30, test=20, size=16)
    assert all(np.asarray(image).tobytes() in by_class[label] for image, label in task.train + task.test)


@pytest.mark.parametrize("name", [n for n in VTAB_GROUPS["specialized"]])
def test_specialized_tasks_are_grey_control_images(name):
    task = vtab_task(name, train=10, test=0, size=32)
    for image, _ in task.train:
        pixels = np.asarray(image)
        assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
        assert pixels.max() == 255 and pixels[0, 0, 0] == 0  # white strokes or mask on black
