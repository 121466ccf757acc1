"""A procedural image world: one coloured, textured shape on a background, deterministic from a seed.

The project cannot download data, so it draws its own: scenes (`Scene`, `sample_scenes`), images and
control images (`render`, `render_with_conditions`), ready-made tasks (`shape_classification`,
`caption_pairs`, `novel_concept_task`, `digits_task`) and the nine tasks of a mini-VTAB-1k (`vtab_task`,
`VTAB_TASKS`, `VTAB_GROUPS`). The held-out split (`HELDOUT_SHAPES`, `HELDOUT_COMBINATIONS`) is never drawn for pretraining, so the downstream tasks have genuinely novel concepts.

Example:
    >>> from studio.world import Scene, render
    >>> scene = Scene("circle", "red", background="grey")
    >>> scene.caption()
    'a red circle on a grey background'
    >>> render(scene, size=64, seed=0).size
    (64, 64)
"""

from .render import render, render_with_conditions
from .scene import Scene, sample_scenes
from .tasks import (
    Task,
    caption_pairs,
    digits_task,
    novel_concept_task,
    shape_classification,
    write_image_folder,
)
from .vocab import (
    BACKGROUNDS,
    COLOURS,
    HELDOUT_COMBINATIONS,
    HELDOUT_SHAPES,
    POSITIONS,
    PRETRAIN_SHAPES,
    SHAPES,
    SIZES,
    TEXTURES,
    has_contrast,
)
from .vtab import VTAB_GROUPS, VTAB_TASKS, vtab_task

__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "HELDOUT_COMBINATIONS",
    "HELDOUT_SHAPES",
    "POSITIONS",
    "PRETRAIN_SHAPES",
    "SHAPES",
    "SIZES",
    "TEXTURES",
    "VTAB_GROUPS",
    "VTAB_TASKS",
    "Scene",
    "Task",
    "caption_pairs",
    "digits_task",
    "has_contrast",
    "novel_concept_task",
    "render",
    "render_with_conditions",
    "sample_scenes",
    "shape_classification",
    "vtab_task",
    "write_image_folder",
]
