"""Shape outlines as polygons in unit coordinates (x right, y down, bounding circle of radius ≈ 1)."""

from __future__ import annotations

from functools import cache

import numpy as np

# A contour is an (N, 2) float array of a closed polygon; `hole` contours are cut out of the filled ones.
Contour = tuple[np.ndarray, bool]


def _regular(n: int, radius: float = 1.0, phase: float = -np.pi / 2) -> np.ndarray:
    angles = phase + 2 * np.pi * np.arange(n) / n
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star() -> np.ndarray:
    outer, inner = _regular(5), _regular(5, 0.45, -np.pi / 2 + np.pi / 5)
    return np.stack([outer, inner], axis=1).reshape(-1, 2)


def _heart() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    points = np.stack([x, y + 2.5], axis=1)  # the offset centres the curve's bounding box vertically
    return points / np.abs(points).max()


def _crescent(offset: float = 0.5, cut_radius: float = 0.8) -> np.ndarray:
    # The unit disc minus a disc of `cut_radius` shifted right by `offset`: an outer arc and an inner arc
    # meeting where the two circles intersect.
    x = (1 + offset**2 - cut_radius**2) / (2 * offset)
    y = np.sqrt(1 - x**2)
    a = np.arctan2(y, x)
    outer = np.linspace(a, 2 * np.pi - a, 64)
    b = np.arctan2(y, x - offset)
    inner = np.linspace(-b, -2 * np.pi + b, 48)
    outer_pts = np.stack([np.cos(outer), np.sin(outer)], axis=1)
    inner_pts = np.stack([offset + cut_radius * np.cos(inner), cut_radius * np.sin(inner)], axis=1)
    points = np.concatenate([outer_pts, inner_pts])
    return points + [0.3, 0.0]  # shift the visible sliver towards the centre


def _polygon(*xy: float) -> np.ndarray:
    return np.asarray(xy, dtype=float).reshape(-1, 2)


@cache
def contours(shape: str) -> tuple[Contour, ...]:
    """The closed contours of `shape` in unit coordinates.

    Args:
        shape: a name from `studio.world.SHAPES`.

    Returns:
        A tuple of `(points, is_hole)` with `points` an (N, 2) array; holes are listed after filled parts.
    """
    arm = 0.3
    filled = {
        "circle": _regular(64),
        "square": _polygon(-0.75, -0.75, 0.75, -0.75, 0.75, 0.75, -0.75, 0.75),
        "triangle": _regular(3) + [0.0, 0.2],
        "diamond": _polygon(0, -1, 0.7, 0, 0, 1, -0.7, 0),
        "hexagon": _regular(6, phase=0.0),
        "cross": _polygon(
            -arm,
            -0.85,
            arm,
            -0.85,
            arm,
            -arm,
            0.85,
            -arm,
            0.85,
            arm,
            arm,
            arm,
            arm,
            0.85,
            -arm,
            0.85,
            -arm,
            arm,
            -0.85,
            arm,
            -0.85,
            -arm,
            -arm,
            -arm,
        ),  # fmt: skip
        "ring": _regular(64),
        "star": _star(),
        "heart": _heart(),
        "crescent": _crescent(),
        "arrow": _polygon(-0.9, -0.25, 0.1, -0.25, 0.1, -0.7, 0.9, 0, 0.1, 0.7, 0.1, 0.25, -0.9, 0.25),
    }
    if shape not in filled:
        raise ValueError(f"unknown shape {shape!r}; known: {sorted(filled)}")
    parts: list[Contour] = [(filled[shape], False)]
    if shape == "ring":
        parts.append((_regular(64, 0.58), True))
    return tuple(parts)
