"""Drawing a `Scene`: anti-aliased by supersampling, deterministic from `(scene, size, seed)`.

The seed varies what the scene leaves open: a ±10 % size jitter, a small position jitter, the phase of the
texture and the background's sensor noise (and the sketch's wobble).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .conditions import SUPERSAMPLE, edges_from_mask, sketch_from_contours
from .scene import Scene
from .shapes import Contour, contours
from .vocab import BACKGROUNDS, COLOURS, POSITIONS, SIZES

_MARGIN = 0.04  # of the image side kept free around the object
_NOISE_STD = 4.0  # background sensor noise, in 8-bit levels


def _pixel_contours(scene: Scene, size: int, rng: np.random.Generator) -> list[Contour]:
    radius = SIZES[scene.size] * size / 2 * rng.uniform(0.9, 1.1)
    free = size / 2 - radius - _MARGIN * size  # how far the centre may move from the middle
    centre = size / 2 + np.asarray(POSITIONS[scene.position]) * free + rng.uniform(-0.03, 0.03, 2) * size
    centre = np.clip(centre, radius + _MARGIN * size, size - radius - _MARGIN * size)
    angle = np.deg2rad(scene.rotation)
    # Counter-clockwise on screen, where y points down.
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    return [(points @ rotation.T * radius + centre, hole) for points, hole in contours(scene.shape)]


def _coverage(pixel_contours: list[Contour], size: int) -> np.ndarray:
    """Fraction of each pixel covered by the object, from a supersampled polygon fill."""
    canvas = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(canvas)
    for points, hole in pixel_contours:
        draw.polygon([tuple(p) for p in points * SUPERSAMPLE], fill=0 if hole else 255)
    small = canvas.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def _texture(name: str, size: int, period: float, angle: float, rng: np.random.Generator) -> np.ndarray:
    """Pattern strength in [0, 1] per pixel; edges are ramps about one pixel wide, for anti-aliasing."""
    if name == "plain":
        return np.zeros((size, size), np.float32)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    if name == "striped":
        u = (x * np.cos(angle) + y * np.sin(angle)) / period
        wave = np.sin(2 * np.pi * u + rng.uniform(0, 2 * np.pi))
        return np.clip(0.5 + wave * period / (2 * np.pi), 0, 1)
    if name == "dotted":
        offset = rng.uniform(0, period, 2)
        dx = (x + offset[0]) % period - period / 2
        dy = (y + offset[1]) % period - period / 2
        return np.clip(0.28 * period - np.hypot(dx, dy) + 0.5, 0, 1)
    if name == "noisy":
        cells = max(2, round(size / period))
        coarse = Image.fromarray((rng.uniform(size=(cells, cells)) * 255).astype(np.uint8))
        smooth = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255
        return np.clip((smooth - 0.5) * 3 + 0.5, 0, 1)
    raise ValueError(f"unknown texture {name!r}")


def _draw(
    scene: Scene, size: int, seed: int
) -> tuple[Image.Image, np.ndarray, list[Contour], np.random.Generator]:
    """The image, the coverage, the pixel contours and the generator (for anything drawn after the image)."""
    rng = np.random.default_rng(seed)
    pixel_contours = _pixel_contours(scene, size, rng)
    alpha = _coverage(pixel_contours, size)[..., None]
    extent = np.ptp(pixel_contours[0][0], axis=0).max()
    pattern = _texture(scene.texture, size, extent / 4, np.deg2rad(45 + scene.rotation), rng)[..., None]
    colour = np.asarray(COLOURS[scene.colour], np.float32)
    # Patterns shade towards black on light colours and towards white on dark ones, keeping the hue.
    shade = np.zeros(3, np.float32) if colour.mean() > 110 else np.full(3, 255, np.float32)
    obj = colour + (shade - colour) * 0.5 * pattern
    background = np.asarray(BACKGROUNDS[scene.background], np.float32)
    pixels = background * (1 - alpha) + obj * alpha + rng.normal(0, _NOISE_STD, (size, size, 1))
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    return image, alpha[..., 0], pixel_contours, rng


def render(scene: Scene, size: int = 64, seed: int = 0) -> Image.Image:
    """Draw a scene.

    Args:
        scene: what to draw.
        size: side of the square image in pixels.
        seed: random seed for the details the scene leaves open; same scene, size and seed give
            identical pixels.

    Returns:
        An RGB `PIL.Image` of `size`×`size`.
    """
    return _draw(scene, size, seed)[0]


def render_with_conditions(scene: Scene, size: int = 64, seed: int = 0) -> dict[str, Any]:
    """Draw a scene together with its control images.

    Args:
        scene: what to draw.
        size: side of the square images in pixels.
        seed: random seed, as in `render` (the image is identical to `render(scene, size, seed)`).

    Returns:
        A dict with `image` (RGB), `mask` (L, 255 on the object, 0 elsewhere), `edges` (L, the object's
        one-pixel outline, white on black), `sketch` (L, a wobbly hand-drawn outline, white on black) and
        `caption` (the short caption).
    """
    image, alpha, pixel_contours, rng = _draw(scene, size, seed)
    mask = alpha >= 0.5
    return {
        "image": image,
        "mask": Image.fromarray((mask * 255).astype(np.uint8)),
        "edges": edges_from_mask(mask),
        "sketch": sketch_from_contours(pixel_contours, size, rng),
        "caption": scene.caption(),
    }
