"""`train_svdiff`: learn a concept as spectral shifts of the UNet's (and optionally the text encoder's)
weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..adapter_folders import save_adapter_folders
from ..concept import ConceptRun, concept_run, train_subject
from .config import SVDiffConfig
from .model import svdiff_param_groups


def train_svdiff(
    pipe,
    images,
    config: SVDiffConfig | dict[str, Any] | None = None,
    *,
    run: ConceptRun | None = None,
    **options: Any,
) -> Path:
    """Teach `pipe` a concept by shifting singular values; the pipeline itself is left unchanged.

    Prompts say "a photo of <token> <class word>": the token is an existing rare word sequence, not a new
    embedding, so the shifts carry the concept.

    Args:
        pipe: a Stable-Diffusion-format pipeline (`diffusion.load_pipeline`).
        images: the concept's images: a folder, paths, PIL images.
        config: an `SVDiffConfig` or a dict of its fields (None: the defaults).
        run: the run's options (`diffusion.concept.ConceptRun`); None: the defaults.
        **options: `ConceptRun` fields overriding `run`'s (e.g. `token=`, `class_word=`, `steps=`).

    Returns:
        The artifact folder: `unet/` (and, with `train_text_encoder`, `text_encoder/`) adapter folders and
        `studio_artifact.json`.

    Raises:
        ValueError: an unknown option, a bad value, no usable images.
    """
    config = SVDiffConfig.coerce(config)
    # The targets name UNet modules; the text encoder takes every layer.
    text_config = (
        dataclasses.replace(config, targets=None, exclude=None) if config.train_text_encoder else None
    )
    return train_subject(
        pipe,
        images,
        config,
        concept_run(run, options),
        save_adapter_folders,
        text_config=text_config,
        param_groups=lambda model: svdiff_param_groups(model, config.lr, config.lr_norm),
    )
