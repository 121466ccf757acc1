"""`Scene`: one object on a background, its captions, and the seeded scene sampler."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import numpy as np

from .vocab import BACKGROUNDS, COLOURS, POSITION_PHRASES, POSITIONS, SHAPES, SIZES, TEXTURES, has_contrast
from .vocab import is_heldout as _is_heldout

Split = Literal["pretrain", "heldout", "all"]
CaptionStyle = Literal["short", "detailed"]

# Rotations stay small so that a rotated square never looks like a diamond.
MAX_ROTATION = 15.0
_CHOICES = {
    "shape": SHAPES,
    "colour": tuple(COLOURS),
    "size": tuple(SIZES),
    "position": tuple(POSITIONS),
    "background": tuple(BACKGROUNDS),
    "texture": TEXTURES,
}


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


@dataclass(frozen=True)
class Scene:
    """One object drawn on a plain background.

    Args:
        shape: a name from `SHAPES`.
        colour: a name from `COLOURS`.
        size: "small", "medium" or "large" (`SIZES`).
        position: a coarse position from `POSITIONS`, e.g. "top left" or "center".
        background: a name from `BACKGROUNDS`.
        texture: the object's surface, one of `TEXTURES`.
        rotation: rotation of the object in degrees (counter-clockwise).
    """

    shape: str
    colour: str
    size: str = "medium"
    position: str = "center"
    background: str = "grey"
    texture: str = "plain"
    rotation: float = 0.0

    def __post_init__(self) -> None:
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; choose from {list(choices)}")

    @property
    def is_heldout(self) -> bool:
        """Whether the scene belongs to the held-out split (never sampled for pretraining)."""
        return _is_heldout(self.shape, self.colour)

    def caption(self, style: CaptionStyle = "short") -> str:
        """Describe the scene in English.

        Args:
            style: "short" ("a red circle on a grey background") or "detailed"
                ("a small striped red circle at the top left on a grey background").
        """
        if style == "short":
            words = [self.colour, self.shape]
        elif style == "detailed":
            texture = [] if self.texture == "plain" else [self.texture]
            words = [self.size, *texture, self.colour, self.shape, POSITION_PHRASES[self.position]]
        else:
            raise ValueError(f"unknown caption style {style!r}; choose 'short' or 'detailed'")
        return f"{_article(words[0])} {' '.join(words)} on {_article(self.background)} {self.background} background"


def _in_split(scene: Scene, split: Split) -> bool:
    if split == "all":
        return True
    if split in ("pretrain", "heldout"):
        return scene.is_heldout == (split == "heldout")
    raise ValueError(f"unknown split {split!r}; choose 'pretrain', 'heldout' or 'all'")


def sample_scenes(
    n: int, seed: int, split: Split = "pretrain", **fixed_attributes: str | float
) -> list[Scene]:
    """Draw `n` random scenes, deterministically from `seed`.

    Args:
        n: number of scenes.
        seed: random seed; the same seed gives the same list.
        split: "pretrain" never yields held-out scenes (`HELDOUT_SHAPES`, `HELDOUT_COMBINATIONS`),
            "heldout" yields only those, "all" yields anything.
        **fixed_attributes: `Scene` fields to hold fixed, e.g. `shape="circle", background="white"`.
            Object colour and background are only paired when they contrast (`has_contrast`), unless both
            are fixed.

    Raises:
        ValueError: on an unknown attribute or value, or when no scene satisfies the split and the fixed
            attributes (e.g. `split="pretrain", shape="star"`).
    """
    known = {f.name for f in fields(Scene)}
    if unknown := set(fixed_attributes) - known:
        raise ValueError(f"unknown scene attributes {sorted(unknown)}; known: {sorted(known)}")
    Scene(**{"shape": SHAPES[0], "colour": next(iter(COLOURS)), **fixed_attributes})  # validates the values
    check_contrast = not {"colour", "background"} <= set(fixed_attributes)
    rng = np.random.default_rng(seed)
    scenes: list[Scene] = []
    for _ in range(1000 + 100 * n):  # rejection sampling; a bound keeps impossible requests from hanging
        if len(scenes) == n:
            break
        drawn = {name: choices[rng.integers(len(choices))] for name, choices in _CHOICES.items()}
        drawn["rotation"] = float(rng.uniform(-MAX_ROTATION, MAX_ROTATION))
        scene = Scene(**{**drawn, **fixed_attributes})
        if _in_split(scene, split) and (not check_contrast or has_contrast(scene.colour, scene.background)):
            scenes.append(scene)
    if len(scenes) < n:
        raise ValueError(f"no scene in split {split!r} satisfies {fixed_attributes}")
    return scenes
