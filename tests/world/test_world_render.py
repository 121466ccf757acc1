"""Rendering: determinism, the object in the image, and the control images."""

import numpy as np
import pytest

from studio.world import COLOURS, SHAPES, Scene, render, render_with_conditions, sample_scenes


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    """Binary dilation with a 3×3 square, `steps` times."""
    for _ in range(steps):
        padded = np.pad(mask, 1)
        mask = np.zeros_like(mask)
        for dy in range(3):
            for dx in range(3):
                mask = mask | padded[dy : dy + mask.shape[0], dx : dx + mask.shape[1]]
    return mask


def _on(image) -> np.ndarray:
    return np.asarray(image) > 127


def test_render_is_deterministic_and_seed_dependent():
    scene = Scene("hexagon", "green", texture="dotted", background="beige")
    first, again, other = render(scene, 48, seed=7), render(scene, 48, seed=7), render(scene, 48, seed=8)
    assert first.mode == "RGB" and first.size == (48, 48)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


def test_render_with_conditions_matches_render_and_is_deterministic():
    scene = Scene("ring", "purple", size="large", position="right")
    out, again = render_with_conditions(scene, seed=2), render_with_conditions(scene, seed=2)
    assert np.array_equal(np.asarray(out["image"]), np.asarray(render(scene, seed=2)))
    for key in ("mask", "edges", "sketch"):
        assert out[key].mode == "L" and out[key].size == (64, 64)
        assert np.array_equal(np.asarray(out[key]), np.asarray(again[key]))
    assert out["caption"] == "a purple ring on a grey background"


@pytest.mark.parametrize("shape", SHAPES)
def test_object_fills_part_of_the_image_in_its_colour(shape):
    scene = Scene(shape, "red", size="medium", background="white")
    out = render_with_conditions(scene, size=64, seed=0)
    mask = _on(out["mask"])
    assert 0.08 < mask.mean() < 0.6
    assert not mask[0].any() and not mask[-1].any() and not mask[:, 0].any() and not mask[:, -1].any()
    pixels = np.asarray(out["image"], dtype=float)
    inside = pixels[_dilate(~mask, 1) == 0].mean(0)  # away from the anti-aliased border
    assert np.abs(inside - COLOURS["red"]).max() < 10
    assert np.abs(pixels[~_dilate(mask, 1)].mean(0) - 240).max() < 5


def test_position_moves_the_object():
    columns = {}
    for position in ("left", "center", "right"):
        mask = _on(render_with_conditions(Scene("square", "blue", position=position), seed=0)["mask"])
        columns[position] = np.nonzero(mask)[1].mean()
    assert columns["left"] + 8 < columns["center"] < columns["right"] - 8


@pytest.mark.parametrize("scene", sample_scenes(12, seed=5, split="all"))
def test_edges_lie_on_the_mask_boundary_and_sketch_follows_them(scene):
    out = render_with_conditions(scene, size=64, seed=1)
    mask, edges, sketch = _on(out["mask"]), _on(out["edges"]), _on(out["sketch"])
    boundary = mask & _dilate(~mask, 1)
    assert edges.any() and not (edges & ~boundary).any()
    assert not (boundary & ~_dilate(edges, 1)).any()
    assert sketch.any()
    assert (sketch & _dilate(edges, 3)).sum() >= 0.9 * sketch.sum()
    assert (edges & _dilate(sketch, 3)).sum() >= 0.9 * edges.sum()
    assert not np.array_equal(sketch, edges)


def test_ring_edges_include_the_hole():
    ring, circle = (
        render_with_conditions(Scene(s, "yellow", size="large"), seed=0) for s in ("ring", "circle")
    )
    assert not _on(ring["mask"])[32, 32]
    assert _on(ring["edges"]).sum() > 1.4 * _on(circle["edges"]).sum()
