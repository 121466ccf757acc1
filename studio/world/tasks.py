"""Deterministic datasets built from the world (and scikit-learn's digits) for training and evaluation."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .render import render
from .scene import CaptionStyle, Scene, Split, sample_scenes
from .vocab import HELDOUT_SHAPES, PRETRAIN_SHAPES

Pair = tuple[Image.Image, int]
_SPLITS = ("train", "val", "test")


@dataclass
class Task:
    """A classification task with fixed splits.

    Args:
        classes: class names; a label is an index into this list.
        train: `(image, label)` pairs for training.
        val: `(image, label)` pairs for validation.
        test: `(image, label)` pairs for testing.
    """

    classes: list[str]
    train: list[Pair]
    val: list[Pair]
    test: list[Pair]


def _seeds(seed: int, *keys: int, n: int) -> list[int]:
    """`n` independent seeds for the stream `(seed, *keys)`: each split and class has its own stream,
    so changing one split's size leaves the other splits unchanged."""
    return np.random.SeedSequence([seed, *keys]).generate_state(n).tolist()


def _shape_task(
    shapes: tuple[str, ...],
    split: Split,
    counts: tuple[int, int, int],
    size: int,
    seed: int,
    draw: Callable[[Scene, int, int], Image.Image] = render,
) -> Task:
    """One class per shape; every other attribute random within `split`; classes interleaved; each scene
    drawn by `draw(scene, size, seed)`."""
    task_key = zlib.crc32(" ".join(shapes).encode())  # tasks over different classes draw unrelated scenes
    parts = {}
    for s, (name, count) in enumerate(zip(_SPLITS, counts, strict=True)):
        per_class = []
        for c, shape in enumerate(shapes):
            scene_seed, *render_seeds = _seeds(seed, task_key, s, c, n=count + 1)
            scenes = sample_scenes(count, scene_seed, split, shape=shape)
            per_class.append([(draw(sc, size, r), c) for sc, r in zip(scenes, render_seeds, strict=True)])
        parts[name] = [pair for group in zip(*per_class, strict=True) for pair in group]
    return Task(classes=list(shapes), **parts)


def shape_classification(
    train_per_class: int = 100,
    val_per_class: int = 20,
    test_per_class: int = 20,
    size: int = 64,
    seed: int = 0,
) -> Task:
    """Classify the shape among the pretraining shapes (`PRETRAIN_SHAPES`); the pretraining task.

    Colour, size, position, background, texture and rotation are random; held-out scenes never appear.

    Args:
        train_per_class: training images per class.
        val_per_class: validation images per class.
        test_per_class: test images per class.
        size: image side in pixels.
        seed: random seed.
    """
    return _shape_task(
        PRETRAIN_SHAPES, "pretrain", (train_per_class, val_per_class, test_per_class), size, seed
    )


def novel_concept_task(
    shots: int = 16, val_per_class: int = 16, test_per_class: int = 50, size: int = 64, seed: int = 0
) -> Task:
    """Classify the held-out shapes (`HELDOUT_SHAPES`), which no pretraining sampler ever draws.

    The val and test sets do not depend on `shots`, so results for 1, 2, 4, … shots are comparable.

    Args:
        shots: training images per class.
        val_per_class: validation images per class.
        test_per_class: test images per class.
        size: image side in pixels.
        seed: random seed.
    """
    return _shape_task(HELDOUT_SHAPES, "heldout", (shots, val_per_class, test_per_class), size, seed)


def caption_pairs(
    n: int, seed: int = 0, size: int = 64, style: CaptionStyle | None = None
) -> list[tuple[Image.Image, str]]:
    """Images of pretraining scenes with their captions, for contrastive (CLIP-style) pretraining.

    Args:
        n: number of pairs.
        seed: random seed.
        size: image side in pixels.
        style: caption style for every pair; None alternates "short" and "detailed".
    """
    scene_seed, *render_seeds = _seeds(seed, n=n + 1)
    scenes = sample_scenes(n, scene_seed, "pretrain")
    styles = [style] * n if style else ["short", "detailed"] * (n // 2) + ["short"] * (n % 2)
    return [
        (render(sc, size, r), sc.caption(st)) for sc, r, st in zip(scenes, render_seeds, styles, strict=True)
    ]


def digits_task(seed: int = 0, size: int = 32, val_fraction: float = 0.1, test_fraction: float = 0.2) -> Task:
    """scikit-learn's handwritten digits (8×8, shipped with the package) as RGB images; the real-image task.

    The split is stratified: every class keeps the same fractions in train, val and test.

    Args:
        seed: random seed of the split.
        size: image side in pixels (upsampled bicubically from 8×8).
        val_fraction: fraction of each class in the validation split.
        test_fraction: fraction of each class in the test split.
    """
    from sklearn.datasets import load_digits  # optional dependency, only needed here

    digits = load_digits()
    rng = np.random.default_rng(seed)
    parts: dict[str, list[Pair]] = {name: [] for name in _SPLITS}
    for label in range(10):
        index = rng.permutation(np.flatnonzero(digits.target == label))
        n_test, n_val = round(len(index) * test_fraction), round(len(index) * val_fraction)
        chunks = np.split(index, [n_test, n_test + n_val])
        for name, chunk in zip(("test", "val", "train"), chunks, strict=True):
            parts[name] += [(_digit_image(digits.images[i], size), label) for i in chunk]
    for pairs in parts.values():
        order = rng.permutation(len(pairs))
        pairs[:] = [pairs[i] for i in order]
    return Task(classes=[str(d) for d in range(10)], **parts)


def _digit_image(pixels: np.ndarray, size: int) -> Image.Image:
    grey = Image.fromarray(np.rint(pixels * 255 / 16).astype(np.uint8))
    return grey.resize((size, size), Image.Resampling.BICUBIC).convert("RGB")


def write_image_folder(pairs: list[Pair], classes: list[str], root: str | Path) -> Path:
    """Write `(image, label)` pairs as an ImageFolder directory `root/<class>/<index>.png`.

    Every class gets a folder, even an empty one. Note that torchvision's `ImageFolder` numbers classes in
    sorted folder order, which may differ from the order of `classes`.

    Args:
        pairs: `(image, label)` pairs; `label` indexes `classes`.
        classes: class names, used as folder names.
        root: the directory to write (created if needed).

    Returns:
        `root` as a `Path`.
    """
    root = Path(root)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(pairs):
        image.save(root / classes[label] / f"{i:05d}.png")
    return root
