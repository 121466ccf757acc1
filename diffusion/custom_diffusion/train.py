"""`train_custom_diffusion`: a concept as trained cross-attention projections plus a modifier token."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from studio.core import inject

from ..architecture import architecture_of
from ..concept import SUBJECT_TEMPLATES, ConceptPlan, ConceptRun, concept_run, train_concept
from ..textual_inversion import (
    TextualInversionConfig,
    add_concept_to_pipeline,
    check_new_token,
    save_embeddings,
)
from .config import CustomDiffusionConfig
from .format import modifier_file, save_custom_diffusion

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

    Several concepts (`concepts=`) train jointly, one modifier token each, as the authors' joint multi-concept
    training: one set of projections for all of them.

    Args:
        pipe: a Stable-Diffusion-format pipeline (`diffusion.load_pipeline`).
        images: the (first) concept's images: a folder, paths, PIL images.
        config: a `CustomDiffusionConfig` or a dict of its fields (None: the defaults).
        run: the run's options (`diffusion.concept.ConceptRun`); None: the defaults. Each token starts from
            its concept's class word's embedding.
        **options: `ConceptRun` fields overriding `run`'s (e.g. `token=`, `class_word=`, `steps=`,
            `concepts=[Concept(token, images, class_word), ...]`).

    Returns:
        The artifact folder: `pytorch_custom_diffusion_weights.safetensors`, each token's embedding
        (`learned_embeds.safetensors`, then `learned_embeds-2.safetensors`, ... for more concepts; see
        `modifier_file`) and `studio_artifact.json`.

    Raises:
        ValueError: an unknown option, a bad value, no usable images, a token already in the vocabulary.
    """
    config = CustomDiffusionConfig.coerce(config)
    run = concept_run(run, options)
    if run.token is None:
        run = dataclasses.replace(run, token=DEFAULT_MODIFIER)
    named = run.named_concepts()
    modifiers = [TextualInversionConfig(token=token, init_token=word or "") for token, word in named]
    for modifier in modifiers:
        check_new_token(pipe.tokenizer, modifier)  # before the slow steps (class images, latents)
    lr = config.lr if config.lr is not None else LR_PER_IMAGE * run.batch_size * run.grad_accum_steps

    def install(pipe) -> ConceptPlan:
        tokenizers, layers = add_concept_to_pipeline(pipe, modifiers)
        keys = [slot.key for slot in architecture_of(pipe).slots]
        inject(pipe.unet, config)

        def save(folder: Path) -> None:
            save_custom_diffusion(pipe.unet, folder)
            for i, modifier in enumerate(modifiers):
                rows = {k: layer.new_embeddings[i : i + 1] for k, layer in zip(keys, layers, strict=True)}
                save_embeddings(folder, modifier.token, rows, modifier_file(i))

        return ConceptPlan(
            tokenizers=tokenizers,
            templates=run.prompt_templates or SUBJECT_TEMPLATES,
            subjects=[f"{token} {word}" if word else token for token, word in named],
            live_text=True,  # the modifiers' embeddings train
            lr=lr,
            hyperparameters=config.to_dict(),
            save=save,
        )

    return train_concept(pipe, images, run, config.method, install)
