"""`train_textual_inversion`: learn a concept's token embeddings from a few images."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..architecture import architecture_of
from ..concept import ConceptPlan, ConceptRun, concept_run, train_concept
from .config import TextualInversionConfig
from .model import add_concept_to_pipeline, check_new_token, expand_prompt, save_embeddings

TI_TEMPLATES = (
    "a photo of a {}",
    "a rendering of a {}",
    "a cropped photo of the {}",
    "the photo of a {}",
    "a close-up photo of a {}",
    "a bright photo of the {}",
    "a good photo of a {}",
    "a picture of a {}",
)
"""Textual Inversion's prompt templates (a subset of those of Gal et al. and the diffusers example)."""

BASE_LR = 5e-4
"""The learning rate per image of a step: `lr` defaults to `BASE_LR × batch_size × grad_accum_steps`."""


def train_textual_inversion(
    pipe,
    images,
    config: TextualInversionConfig | dict[str, Any] | None = None,
    *,
    run: ConceptRun | None = None,
    **options: Any,
) -> Path:
    """Teach `pipe` a new token for a concept; the pipeline itself is left unchanged.

    Args:
        pipe: a Stable Diffusion 1.x/2.x or SDXL pipeline (`diffusion.load_pipeline`); on SDXL the token is
            learnt in both text encoders.
        images: the concept's images: a folder, paths, PIL images.
        config: a `TextualInversionConfig` or a dict of its fields (None: the defaults).
        run: the run's options (`diffusion.concept.ConceptRun`); None: the defaults.
        **options: `ConceptRun` fields overriding `run`'s (e.g. `token=`, `steps=`, `output_dir=`). A given
            `token` replaces the config's; without `init_token`, the vectors start from `class_word`.

    Returns:
        The artifact folder: `learned_embeds.safetensors` (diffusers' format; on SDXL with `clip_l` and
        `clip_g`, one per text encoder) and `studio_artifact.json`.

    Raises:
        ValueError: an unknown option, a bad value, no usable images, a token already in the vocabulary.
    """
    config = TextualInversionConfig.coerce(config)
    run = concept_run(run, options)
    if run.token is None:
        run = dataclasses.replace(run, token=config.token)
    start = config.init_token or run.class_word or ""
    config = dataclasses.replace(config, token=run.token, init_token=start)
    check_new_token(pipe.tokenizer, config)  # before the slow steps (class images, latents)
    lr = config.lr if config.lr is not None else BASE_LR * run.batch_size * run.grad_accum_steps

    def install(pipe) -> ConceptPlan:
        tokenizers, layers = add_concept_to_pipeline(pipe, config)
        pipe.unet.requires_grad_(False)
        keys = [slot.key for slot in architecture_of(pipe).slots]
        return ConceptPlan(
            tokenizers=tokenizers,
            templates=run.prompt_templates or TI_TEMPLATES,
            subjects=[expand_prompt(config.token, config)],
            live_text=True,
            lr=lr,
            hyperparameters={**config.to_dict(), "token_names": config.token_names()},
            save=lambda folder: save_embeddings(
                folder, config.token, {k: layer.new_embeddings for k, layer in zip(keys, layers, strict=True)}
            ),
            preview_prompt=lambda prompt: expand_prompt(prompt, config),
        )

    return train_concept(pipe, images, run, config.method, install)
