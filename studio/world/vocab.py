"""The vocabulary of the image world and its held-out split.

Every attribute value is a plain string so that scenes, captions and class names stay human-readable.

Held-out split (never produced by the `"pretrain"` sampler, hence never seen by the reference models):

- the shapes in `HELDOUT_SHAPES` ("star", "heart", "crescent", "arrow"): novel concepts for Textual
  Inversion / SVDiff and new classes for few-shot CLIP;
- the colour-shape pairs in `HELDOUT_COMBINATIONS` (a blue triangle): a compositional probe, both parts
  are familiar but never together.
"""

from __future__ import annotations

SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "diamond",
    "hexagon",
    "cross",
    "ring",
    "star",
    "heart",
    "crescent",
    "arrow",
)
HELDOUT_SHAPES: tuple[str, ...] = ("star", "heart", "crescent", "arrow")
PRETRAIN_SHAPES: tuple[str, ...] = tuple(s for s in SHAPES if s not in HELDOUT_SHAPES)
HELDOUT_COMBINATIONS: frozenset[tuple[str, str]] = frozenset({("blue", "triangle")})

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (240, 215, 40),
    "green": (40, 165, 70),
    "blue": (40, 90, 225),
    "purple": (140, 60, 190),
    "pink": (245, 135, 195),
    "brown": (125, 75, 35),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "grey": (128, 128, 128),
    "black": (20, 20, 20),
    "white": (240, 240, 240),
    "beige": (225, 205, 160),
    "teal": (30, 100, 110),
}
# Fraction of the image side covered by the object's bounding circle (before a small per-seed jitter).
SIZES: dict[str, float] = {"small": 0.42, "medium": 0.56, "large": 0.7}
TEXTURES: tuple[str, ...] = ("plain", "striped", "dotted", "noisy")

# Coarse position name -> (column, row) offset in {-1, 0, 1}, and the phrase used in captions.
POSITIONS: dict[str, tuple[int, int]] = {
    "top left": (-1, -1),
    "top": (0, -1),
    "top right": (1, -1),
    "left": (-1, 0),
    "center": (0, 0),
    "right": (1, 0),
    "bottom left": (-1, 1),
    "bottom": (0, 1),
    "bottom right": (1, 1),
}
POSITION_PHRASES: dict[str, str] = {
    "top left": "at the top left",
    "top": "at the top",
    "top right": "at the top right",
    "left": "on the left",
    "center": "in the center",
    "right": "on the right",
    "bottom left": "at the bottom left",
    "bottom": "at the bottom",
    "bottom right": "at the bottom right",
}

# Colour pairs closer than this (Euclidean RGB) are not sampled together: the object must stand out.
MIN_CONTRAST = 90.0


def has_contrast(colour: str, background: str) -> bool:
    """Whether an object of `colour` is clearly visible on `background`.

    Args:
        colour: a key of `COLOURS`.
        background: a key of `BACKGROUNDS`.
    """
    a, b = COLOURS[colour], BACKGROUNDS[background]
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5 >= MIN_CONTRAST


def is_heldout(shape: str, colour: str) -> bool:
    """Whether a scene with this shape and colour belongs to the held-out split.

    Args:
        shape: a key of `SHAPES`.
        colour: a key of `COLOURS`.
    """
    return shape in HELDOUT_SHAPES or (colour, shape) in HELDOUT_COMBINATIONS
