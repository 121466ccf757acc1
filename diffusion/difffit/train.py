"""`train_difffit`: a concept as bias and norm shifts plus per-block output scales of the UNet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..adapter_folders import save_adapter_folders
from ..concept import ConceptRun, concept_run, train_subject
from .config import DiffFitConfig


def train_difffit(
    pipe,
    images,
    config: DiffFitConfig | dict[str, Any] | None = None,
    *,
    run: ConceptRun | None = None,
    **options: Any,
) -> Path:
    """Teach `pipe` a concept with DiffFit on its UNet (DreamBooth's subject prompts, optional prior
    preservation); the pipeline itself is left unchanged.

    Args:
        pipe: a Stable-Diffusion-format pipeline (`diffusion.load_pipeline`).
        images: the concept's images: a folder, paths, PIL images.
        config: a `DiffFitConfig` or a dict of its fields (None: the defaults).
        run: the run's options (`diffusion.concept.ConceptRun`); None: the defaults.
        **options: `ConceptRun` fields overriding `run`'s (e.g. `token=`, `class_word=`, `steps=`).

    Returns:
        The artifact folder: a `unet/` adapter folder and `studio_artifact.json`.

    Raises:
        ValueError: an unknown option, a bad value, no usable images.
    """
    config = DiffFitConfig.coerce(config)
    return train_subject(pipe, images, config, concept_run(run, options), save_adapter_folders)
