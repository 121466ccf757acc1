"""Control images derived from a rendered scene: the object outline (edges) and a hand-drawn sketch.

Both are L-mode images with white (255) strokes on black (0), the convention of ControlNet's canny and
scribble conditions.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .shapes import Contour

SUPERSAMPLE = 4


def edges_from_mask(mask: np.ndarray) -> Image.Image:
    """A one-pixel outline of a binary mask, like a Canny edge map of the object.

    The outline is the set of mask pixels with a 4-neighbour outside the mask (holes included), so it lies
    on the object's boundary and never outside it.

    Args:
        mask: (H, W) boolean array, True on the object.
    """
    padded = np.pad(mask, 1, constant_values=False)
    interior = (
        padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    )  # all four neighbours inside
    return Image.fromarray(((mask & ~interior) * 255).astype(np.uint8))


def _resample_closed(points: np.ndarray, spacing: float) -> np.ndarray:
    closed = np.concatenate([points, points[:1]])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
    t = np.arange(0.0, arc[-1], spacing)
    return np.stack([np.interp(t, arc, closed[:, 0]), np.interp(t, arc, closed[:, 1])], axis=1)


def _wobbly_stroke(points: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """One pass of a pen around a closed contour: a slow sideways drift plus a short overshoot at the end."""
    n = len(points)
    tangent = np.roll(points, -1, axis=0) - np.roll(points, 1, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    overshoot = int(n * rng.uniform(0.03, 0.12))
    index = np.arange(n + overshoot)
    t = index / n
    # A few low-frequency sines; they are not periodic over one loop, so the stroke does not close neatly.
    freqs = rng.uniform(1.0, 4.0, size=3)
    phases = rng.uniform(0, 2 * np.pi, size=3)
    weights = rng.normal(size=3)
    drift = (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)
    drift *= amplitude / max(np.abs(drift).max(), 1e-9)
    return points[index % n] + normal[index % n] * drift[:, None]


def sketch_from_contours(contours: list[Contour], size: int, rng: np.random.Generator) -> Image.Image:
    """A rough hand-drawn outline: each contour traced once with a wobbling, slightly overshooting line.

    Args:
        contours: `(points, is_hole)` contours in pixel coordinates of a `size`×`size` image.
        size: output side in pixels.
        rng: random generator for the wobble.

    Returns:
        An L-mode image, white strokes on black, anti-aliased.
    """
    canvas = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(canvas)
    width = round(SUPERSAMPLE * max(1.5, size / 48))
    for points, _ in contours:
        extent = np.ptp(points, axis=0).max()
        stroke = _wobbly_stroke(_resample_closed(points, spacing=1.0), 0.03 * extent + 0.3, rng)
        stroke = stroke + rng.uniform(-0.5, 0.5, size=2)
        draw.line([tuple(p) for p in stroke * SUPERSAMPLE], fill=255, width=width, joint="curve")
    return canvas.resize((size, size), Image.Resampling.BOX)
