"""A mini-VTAB-1k drawn from the world: nine classification tasks in VTAB's three groups.

VTAB-1k (Zhai et al., 2019) adapts a backbone to 19 tasks with 1,000 training images each, 800/200 for
choosing hyperparameters, and groups them by what they ask of the backbone. The mini version keeps the
protocol and the groups with tasks the world can draw offline:

- *natural* (photos of things): the held-out shapes, the texture of an object, scikit-learn's handwritten
  digits;
- *specialized* (another imaging domain): the shape seen only as a hand-drawn sketch, as a binary mask, or
  as an edge map;
- *structured* (geometry of the scene, VTAB's CLEVR/dSprites/sNORB group): how many objects there are
  (CLEVR-count), which way an object without rotational symmetry points (four quarter-turns, as
  dSprites-orientation), how large an object is (four size bins, as CLEVR- and KITTI-distance, where the
  nearest object's distance shows as its apparent size).

There is no *where* task (dSprites-location) and no *how far apart* task: the bundled backbone was pretrained
on objects at random positions and pools its tokens by their mean, so its pooled features hardly see where an
object is, and within VTAB-1k's budget no method learns either (a 3×3 grid cell, a quadrant or a distance bin
stay near chance even for full fine-tuning, though a linear probe of its unpooled patch tokens finds the
cell). A task on which every method scores chance measures nothing.

Every sample has its own seed, and sample `i` of a split has label `i mod classes`, so any prefix of a
split is balanced to within one image per class, and a larger split starts with the smaller one.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

from .render import render, render_with_conditions
from .scene import sample_scenes
from .tasks import Pair, Task, _digit_image, _seeds
from .vocab import BACKGROUNDS, HELDOUT_SHAPES, SHAPES, TEXTURES

VAL_FRACTION = 0.2  # VTAB-1k: 800 of the 1,000 training images train, 200 validate
_TILE = 0.25  # side of one counted object's square, as a fraction of the image side
_NOISE_STD = 4.0  # background sensor noise of structured scenes, as in `render`
MAX_COUNT = 5
# Bins of the side of the object's square, as fractions of the image side (the shape fills about 70 % of it).
SIZE_BINS = (0.2, 0.35, 0.5, 0.65, 0.8)
# Shapes that look different after any quarter-turn, and how far an orientation strays from its quarter-turn.
ORIENTED_SHAPES = ("heart", "crescent", "arrow")
ORIENTATION_JITTER = 30.0  # degrees

# Draws the image of one sample: `(label, seed, size) -> image`.
Sampler = Callable[[int, int, int], Image.Image]


def _scene_image(split: str, attribute: str, values: tuple[str, ...]) -> Sampler:
    """A random scene of `split` with `attribute` fixed to the label's value, rendered in colour."""

    def sample(label: int, seed: int, size: int) -> Image.Image:
        scene_seed, render_seed = _seeds(seed, n=2)
        scene = sample_scenes(1, scene_seed, split, **{attribute: values[label]})[0]
        return render(scene, size, render_seed)

    return sample


def _control_image(kind: str) -> Sampler:
    """A random scene of any shape, seen only through one of its control images (grey, as RGB)."""

    def sample(label: int, seed: int, size: int) -> Image.Image:
        scene_seed, render_seed = _seeds(seed, n=2)
        scene = sample_scenes(1, scene_seed, "all", shape=SHAPES[label])[0]
        return render_with_conditions(scene, size, render_seed)[kind].convert("RGB")

    return sample


def _composite(centres: np.ndarray, size: int, rng: np.random.Generator, tile: float = _TILE) -> Image.Image:
    """Random objects (any shape, colour, texture) in squares of side `tile` (a fraction of `size`) centred at
    `centres` (pixels) on one background."""
    background = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    tile = round(tile * size)
    scenes = sample_scenes(
        len(centres), int(rng.integers(2**31)), "all", size="large", position="center", background=background
    )
    pixels = np.asarray(BACKGROUNDS[background], np.float32) + rng.normal(0, _NOISE_STD, (size, size, 3))
    canvas = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    for scene, centre in zip(scenes, centres, strict=True):
        drawn = render_with_conditions(scene, tile, int(rng.integers(2**31)))
        corner = tuple(int(v) for v in np.rint(centre - tile / 2))
        canvas.paste(drawn["image"], corner, drawn["mask"])
    return canvas


def _free_range(size: int, tile: float = _TILE) -> tuple[float, float]:
    """Where the centre of an object's square of side `tile` may lie so that the whole square is inside."""
    half = round(tile * size) / 2
    return half, size - half


def _count(label: int, seed: int, size: int) -> Image.Image:
    """`label + 1` objects, none overlapping another."""
    rng = np.random.default_rng(seed)
    low, high = _free_range(size)
    n, tile = label + 1, round(_TILE * size)
    while True:  # a crowded draw can leave no room for the last object; then the whole layout is redrawn
        centres: list[np.ndarray] = []
        for _ in range(100 * n):
            centre = rng.uniform(low, high, 2)
            if all(np.abs(centre - other).max() >= tile for other in centres):
                centres.append(centre)
            if len(centres) == n:
                return _composite(np.array(centres), size, rng)


def _orientation(label: int, seed: int, size: int) -> Image.Image:
    """One object of `ORIENTED_SHAPES` turned `label` quarter-turns counter-clockwise, give or take the jitter."""
    rng = np.random.default_rng(seed)
    rotation = 90.0 * label + rng.uniform(-ORIENTATION_JITTER, ORIENTATION_JITTER)
    shape = ORIENTED_SHAPES[rng.integers(len(ORIENTED_SHAPES))]
    object_size = ("small", "medium")[rng.integers(2)]  # two sizes: a turn is not read off one template
    scene = sample_scenes(
        1, int(rng.integers(2**31)), "all", shape=shape, rotation=rotation, size=object_size
    )
    return render(scene[0], size, int(rng.integers(2**31)))


def _size(label: int, seed: int, size: int) -> Image.Image:
    """One object anywhere in the image, in a square whose side lies in bin `label` of `SIZE_BINS`."""
    rng = np.random.default_rng(seed)
    tile = rng.uniform(SIZE_BINS[label], SIZE_BINS[label + 1])
    low, high = _free_range(size, tile)
    return _composite(rng.uniform(low, high, (1, 2)), size, rng, tile)


def _digits(train: int, test: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Disjoint train and test images of scikit-learn's digits, `i mod 10` labelled, class by class."""
    from sklearn.datasets import load_digits  # optional dependency, only needed here

    digits = load_digits()
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(digits.target == c)) for c in range(10)]
    needed = -(-train // 10) + -(-test // 10)
    if needed > min(len(index) for index in per_class):
        raise ValueError(f"digits has too few images for {train} train and {test} test images")
    # Train images come from the front of each class's permutation, test images from the back.
    train_images = [digits.images[per_class[i % 10][i // 10]] for i in range(train)]
    test_images = [digits.images[per_class[i % 10][-1 - i // 10]] for i in range(test)]
    return train_images, test_images


def _labels(n: int, classes: int) -> list[int]:
    return [i % classes for i in range(n)]


_SIZE_NAMES = tuple(f"{a:.2f}-{b:.2f}" for a, b in zip(SIZE_BINS[:-1], SIZE_BINS[1:], strict=True))

# name -> (group, class names, sampler); digits has no sampler (it reads scikit-learn's images).
VTAB_TASKS: dict[str, tuple[str, tuple[str, ...], Sampler | None]] = {
    "heldout_shapes": ("natural", HELDOUT_SHAPES, _scene_image("heldout", "shape", HELDOUT_SHAPES)),
    "textures": ("natural", TEXTURES, _scene_image("pretrain", "texture", TEXTURES)),
    "digits": ("natural", tuple(str(d) for d in range(10)), None),
    "sketches": ("specialized", SHAPES, _control_image("sketch")),
    "masks": ("specialized", SHAPES, _control_image("mask")),
    "edges": ("specialized", SHAPES, _control_image("edges")),
    "count": ("structured", tuple(str(n) for n in range(1, MAX_COUNT + 1)), _count),
    "orientation": ("structured", ("0°", "90°", "180°", "270°"), _orientation),
    "size": ("structured", _SIZE_NAMES, _size),
}
VTAB_GROUPS: dict[str, tuple[str, ...]] = {
    group: tuple(name for name, (g, _, _) in VTAB_TASKS.items() if g == group)
    for group in ("natural", "specialized", "structured")
}


def vtab_task(name: str, train: int = 1000, test: int = 500, size: int = 64, seed: int = 0) -> Task:
    """One mini-VTAB task: `train` images split 80/20 into `Task.train` and `Task.val`, and `test` images.

    VTAB-1k's protocol: choose hyperparameters by training on `Task.train` and scoring `Task.val`, then
    train on both (`Task.train + Task.val`, the 1,000) and report accuracy on `Task.test`.

    Args:
        name: a key of `VTAB_TASKS`.
        train: training images (1,000 in VTAB-1k), validation included.
        test: test images (drawn from their own seeds, disjoint from training).
        size: image side in pixels.
        seed: random seed; the same arguments give identical images.

    Raises:
        ValueError: an unknown task name, or more digits than scikit-learn ships (about 170 per class).
    """
    if name not in VTAB_TASKS:
        raise ValueError(f"unknown mini-VTAB task {name!r}; choose from {list(VTAB_TASKS)}")
    _, classes, sampler = VTAB_TASKS[name]
    if sampler is None:
        train_images, test_images = _digits(train, test, seed)
        splits = [[_digit_image(pixels, size) for pixels in images] for images in (train_images, test_images)]
    else:
        task_key = zlib.crc32(name.encode())
        splits = [
            [
                sampler(label, s, size)
                for label, s in zip(_labels(n, len(classes)), _seeds(seed, task_key, k, n=n), strict=True)
            ]
            for k, n in enumerate((train, test))
        ]
    train_pairs: list[Pair] = list(zip(splits[0], _labels(train, len(classes)), strict=True))
    test_pairs: list[Pair] = list(zip(splits[1], _labels(test, len(classes)), strict=True))
    n_train = train - round(train * VAL_FRACTION)
    return Task(
        classes=list(classes), train=train_pairs[:n_train], val=train_pairs[n_train:], test=test_pairs
    )
