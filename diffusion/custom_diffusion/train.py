"""`train_custom_diffusion`: a concept as trained cross-attention projections plus a modifier token."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from studio.core import inject

from ..architecture import architecture_of
from ..concept import SUBJECT_TEMPLATES, ConceptPlan, ConceptRun, concept_run, fill, train_concept
from ..textual_inversion import (
    TextualInversionConfig,
    add_concept_to_pipeline,
    check_new_token,
    expand_prompt,
    save_embeddings,
)
from .config import CustomDiffusionConfig
from .format import save_custom_diffusion

DEFAULT_MODIFIER = "<new1>"
"""The modifier token `V*` when the run names none (the authors' and diffusers' name)."""

LR_PER_IMAGE = 1e-5
"""The authors' learning rate per image of a step; `lr` defaults to it × batch size × accumulation steps."""


def train_custom_diffusion(
    pipe,
    images,
    config: CustomDiffusionConfig | dict[str, Any] | None = None,
    *,
    run: ConceptRun | None = None,
    **options: Any,
) -> Path:
    """Teach `pipe` a concept with Custom Diffusion: prompts "a photo of <token> <class word>" where the token
    is a new modifier embedding, trained with the cross-attention key/value projections; the pipeline itself
    is left unchanged.

    Args:
        pipe: a Stable-Diffusion-format pipeline (`diffusion.load_pipeline`).
        images: the concept's images: a folder, paths, PIL images.
        config: a `CustomDiffusionConfig` or a dict of its fields (None: the defaults).
        run: the run's options (`diffusion.concept.ConceptRun`); None: the defaults. The token starts from the
            class word's embedding.
        **options: `ConceptRun` fields overriding `run`'s (e.g. `token=`, `class_word=`, `steps=`).

    Returns:
        The artifact folder: `pytorch_custom_diffusion_weights.safetensors`, the token's
        `learned_embeds.safetensors` and `studio_artifact.json`.

    Raises:
        ValueError: an unknown option, a bad value, no usable images, a token already in the vocabulary.
    """
    config = CustomDiffusionConfig.coerce(config)
    run = concept_run(run, options)
    if run.token is None:
        run = dataclasses.replace(run, token=DEFAULT_MODIFIER)
    modifier = TextualInversionConfig(token=run.token, init_token=run.class_word or "")
    check_new_token(pipe.tokenizer, modifier)  # before the slow steps (class images, latents)
    lr = config.lr if config.lr is not None else LR_PER_IMAGE * run.batch_size * run.grad_accum_steps

    def install(pipe) -> ConceptPlan:
        tokenizers, layers = add_concept_to_pipeline(pipe, modifier)
        keys = [slot.key for slot in architecture_of(pipe).slots]
        inject(pipe.unet, config)
        subject = f"{run.token} {run.class_word}" if run.class_word else run.token
        prompts = [
            expand_prompt(p, modifier) for p in fill(run.prompt_templates or SUBJECT_TEMPLATES, subject)
        ]

        def save(folder: Path) -> None:
            save_custom_diffusion(pipe.unet, folder)
            save_embeddings(
                folder, run.token, {k: r.new_embeddings for k, r in zip(keys, layers, strict=True)}
            )

        return ConceptPlan(
            tokenizers=tokenizers,
            prompts=prompts,
            live_text=True,  # the modifier's embedding trains
            lr=lr,
            hyperparameters=config.to_dict(),
            save=save,
            preview_prompt=lambda prompt: expand_prompt(prompt, modifier),
        )

    return train_concept(pipe, images, run, config.method, install)
