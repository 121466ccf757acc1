"""`train_svdiff`: learn a concept as spectral shifts of the UNet's (and optionally the text encoder's)
weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..adapter_folders import save_adapter_folders
from ..concept import ConceptRun, CutMixUnmix, concept_run, train_subject
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
    embedding, so the shifts carry the concept. Several concepts (`concepts=`) train jointly, each with its own
    token; with `cut_mix_unmix`, also on two-concept collages with the Unmix attention penalty
    (`diffusion.concept.cutmix`, `diffusion.concept.unmix`; the paper's recipe, never released by its authors).

    Args:
        pipe: a Stable-Diffusion-format pipeline (`diffusion.load_pipeline`).
        images: the (first) concept's images: a folder, paths, PIL images.
        config: an `SVDiffConfig` or a dict of its fields (None: the defaults).
        run: the run's options (`diffusion.concept.ConceptRun`); None: the defaults.
        **options: `ConceptRun` fields overriding `run`'s (e.g. `token=`, `class_word=`, `steps=`,
            `concepts=[Concept(token, images, class_word), ...]`).

    Returns:
        The artifact folder: `unet/` (and, with `train_text_encoder`, `text_encoder/`) adapter folders and
        `studio_artifact.json`.

    Raises:
        ValueError: an unknown option, a bad value, no usable images, `cut_mix_unmix` with one concept.
    """
    config = SVDiffConfig.coerce(config)
    run = concept_run(run, options)
    config.check_concepts(1 + len(run.concepts))
    cut_mix = None
    if config.cut_mix_unmix:
        cut_mix = CutMixUnmix(config.cut_mix_probability, config.unmix_weight)
    # The targets name UNet modules; the text encoder takes every layer.
    text_config = (
        dataclasses.replace(config, targets=None, exclude=None) if config.train_text_encoder else None
    )
    return train_subject(
        pipe,
        images,
        config,
        run,
        save_adapter_folders,
        text_config=text_config,
        param_groups=lambda model: svdiff_param_groups(model, config.lr, config.lr_norm),
        cut_mix=cut_mix,
    )
