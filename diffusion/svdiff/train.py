"""`train_svdiff`: learn a concept as spectral shifts of the UNet's (and optionally the text encoder's)
weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from studio.core import inject

from ..artifacts import base_model_of
from ..concept import SUBJECT_TEMPLATES, ConceptPlan, ConceptRun, as_config, concept_run, fill, train_concept
from .config import SVDiffConfig
from .model import svdiff_param_groups
from .pipeline import save_svdiff

DEFAULT_TOKEN = "<concept>"


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
    config = as_config(SVDiffConfig, config)
    run = concept_run(run, options)
    if run.token is None:
        run = dataclasses.replace(run, token=DEFAULT_TOKEN)
    base = base_model_of(pipe)

    def install(pipe) -> ConceptPlan:
        inject(pipe.unet, config)
        if config.train_text_encoder:
            # The targets name UNet modules; the text encoder takes every layer.
            inject(pipe.text_encoder, dataclasses.replace(config, targets=None, exclude=None))
        else:
            pipe.text_encoder.requires_grad_(False)
        subject = f"{run.token} {run.class_word}" if run.class_word else run.token
        return ConceptPlan(
            tokenizer=pipe.tokenizer,
            prompts=fill(run.prompt_templates or SUBJECT_TEMPLATES, subject),
            live_text=config.train_text_encoder,
            live_class_text=config.train_text_encoder,
            lr=config.lr,
            hyperparameters=config.to_dict(),
            save=lambda folder: save_svdiff(pipe, folder, base),
            param_groups=lambda model: svdiff_param_groups(model, config.lr, config.lr_norm),
        )

    return train_concept(pipe, images, run, config.method, install)
