"""Condition extractors applied to raw photos, checked against OpenCV and the image world's own conditions."""

import cv2
import numpy as np
import pytest
from PIL import Image

from diffusion.conditions import CONDITIONS, canny, extract_condition, mask, sketch
from studio.world import Scene, render_with_conditions


@pytest.fixture(scope="module")
def scene():
    return render_with_conditions(Scene("square", "blue", background="white"), size=64, seed=3)


def _binary(image):
    return np.asarray(image.convert("L")) > 127


def test_canny_is_opencv_with_the_given_thresholds(scene):
    gray = np.asarray(scene["image"].convert("L"))
    edges = canny(scene["image"], 50, 150)
    assert edges.mode == "L" and edges.size == scene["image"].size
    assert np.array_equal(np.asarray(edges), cv2.Canny(gray, 50, 150))
    # Low thresholds also pick up the background's sensor noise: the arguments reach OpenCV.
    assert _binary(canny(scene["image"], 5, 10)).sum() > _binary(edges).sum()


def test_mask_of_a_photo_matches_the_rendered_mask(scene):
    ours, truth = _binary(mask(scene["image"])), _binary(scene["mask"])
    iou = (ours & truth).sum() / (ours | truth).sum()
    assert iou > 0.9


def test_sketch_strokes_lie_on_the_object_outline(scene):
    strokes = _binary(sketch(scene["image"]))
    outline = cv2.dilate(np.asarray(scene["edges"]), np.ones((5, 5), np.uint8)) > 0
    assert strokes.sum() > 20
    assert (strokes & outline).sum() / strokes.sum() > 0.8


def test_grayscale_and_every_registered_extractor_keep_the_size(scene):
    assert np.array_equal(
        np.asarray(extract_condition(scene["image"], "grayscale")), np.asarray(scene["image"].convert("L"))
    )
    for name in CONDITIONS:
        assert extract_condition(scene["image"], name).size == scene["image"].size


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("edges", {}, "unknown condition"),
        ("canny", {"low_threshold": 200, "high_threshold": 100}, "low <= high"),
        ("canny", {"sigma": 2}, "bad parameters"),
        ("sketch", {"blur": 4}, "odd"),
        ("mask", {"border": 0}, "border"),
    ],
)
def test_bad_extractor_arguments_are_clear_errors(name, params, match):
    with pytest.raises(ValueError, match=match):
        extract_condition(Image.new("RGB", (32, 32)), name, **params)
