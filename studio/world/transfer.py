"""Tasks for few-shot transfer of the reference CLIP: known shapes drawn in a style it never saw (domain shift),
and a task's classes split into base and new ones (base-to-new generalisation)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PIL import Image, ImageFilter, ImageOps

from .render import render
from .scene import Scene
from .tasks import Task, _shape_task
from .vocab import PRETRAIN_SHAPES


def _negative(image: Image.Image) -> Image.Image:
    return ImageOps.invert(image)


def _blur(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(image.width / 32))


def _grey(image: Image.Image) -> Image.Image:
    return ImageOps.grayscale(image).convert("RGB")


# Styles no pretraining image has. Zero-shot shape accuracy of studio/shapes-clip on the 7 pretraining
# shapes (chance 14%, 30 images per class): 87% as drawn, 40% blurred, 40% negative, 26% grey. Blurred
# images keep enough of the shape for few-shot methods to learn (a 16-shot linear probe reaches 60%); in
# the negative style they do not (34%).
SHIFTS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "blur": _blur,
    "negative": _negative,
    "grey": _grey,
}


def shifted_shape_task(
    shift: str = "blur",
    shots: int = 16,
    val_per_class: int = 16,
    test_per_class: int = 50,
    size: int = 64,
    seed: int = 0,
) -> Task:
    """Classify the pretraining shapes (`PRETRAIN_SHAPES`, classes the reference CLIP names) drawn in a
    shifted style: the class words carry a prior, the pictures are new.

    The val and test sets do not depend on `shots`, so results for 1, 2, 4, … shots are comparable.

    Args:
        shift: a key of `SHIFTS`: `"blur"` (Gaussian, radius size/32), `"negative"` (inverted colours) or
            `"grey"` (no colour).
        shots: training images per class.
        val_per_class: validation images per class.
        test_per_class: test images per class.
        size: image side in pixels.
        seed: random seed.

    Raises:
        ValueError: an unknown shift.
    """
    if shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; known shifts: {', '.join(SHIFTS)}")
    style = SHIFTS[shift]

    def draw(scene: Scene, side: int, render_seed: int) -> Image.Image:
        return style(render(scene, side, render_seed))

    counts = (shots, val_per_class, test_per_class)
    return _shape_task(PRETRAIN_SHAPES, "pretrain", counts, size, seed, draw=draw)


def class_subset(task: Task, classes: Sequence[str]) -> Task:
    """The task restricted to `classes` (in that order), labels renumbered: e.g. the base or the new half of
    a base-to-new split.

    Args:
        task: the whole task.
        classes: some of its class names.

    Raises:
        ValueError: a name that is not one of the task's classes.
    """
    unknown = [name for name in classes if name not in task.classes]
    if unknown:
        raise ValueError(f"unknown classes {unknown}; the task's classes: {task.classes}")
    index = {task.classes.index(name): i for i, name in enumerate(classes)}

    def keep(pairs: list[tuple[Image.Image, int]]) -> list[tuple[Image.Image, int]]:
        return [(image, index[label]) for image, label in pairs if label in index]

    return Task(list(classes), keep(task.train), keep(task.val), keep(task.test))
