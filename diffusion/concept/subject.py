"""Training a method that adapts the UNet (and maybe the text encoder) on DreamBooth's subject prompts,
"a photo of <token> <class word>": SVDiff, LoRA, DiffFit. The token is an existing word sequence, not a new
embedding, so the adapter carries the concept."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.core import AdapterConfig, inject

from ..architecture import architecture_of
from ..artifacts import base_model_of
from .cutmix import CutMixUnmix
from .data import SUBJECT_TEMPLATES
from .run import ConceptPlan, ConceptRun, train_concept

DEFAULT_TOKEN = "<concept>"


def train_subject(
    pipe,
    images,
    config: AdapterConfig,
    run: ConceptRun,
    save: Callable[[Any, Path, str | None], Any],
    *,
    text_config: AdapterConfig | None = None,
    param_groups: Callable[[Any], list[dict]] | None = None,
    cut_mix: CutMixUnmix | None = None,
) -> Path:
    """Inject `config` into the UNet (and `text_config` into every text encoder), train on the subject prompts,
    and save with `save`; the pipeline is left as it was.

    Args:
        pipe: a Stable Diffusion 1.x/2.x or SDXL pipeline.
        images: the concept's images.
        config: the method's config (an `AdapterConfig` with an `lr` field), injected into `pipe.unet`.
        run: the run's options; a missing token becomes `DEFAULT_TOKEN`.
        save: `(pipe, folder, base_model) -> ...` writing the method's files.
        text_config: the config injected into the text encoders, or None to keep it frozen.
        param_groups: optimizer groups `(model) -> list of dicts` (None: one group at `config.lr`).
        cut_mix: Cut-Mix-Unmix settings for a run of two or more concepts (`run.concepts`), or None.

    Returns:
        The artifact folder.
    """
    if run.token is None:
        run = dataclasses.replace(run, token=DEFAULT_TOKEN)
    base = base_model_of(pipe)
    live_text = text_config is not None

    def install(pipe) -> ConceptPlan:
        arch = architecture_of(pipe)
        inject(pipe.unet, config)
        for encoder in arch.encoders(pipe):
            if live_text:
                inject(encoder, text_config)
            else:
                encoder.requires_grad_(False)
        return ConceptPlan(
            tokenizers=arch.tokenizers(pipe),
            templates=run.prompt_templates or SUBJECT_TEMPLATES,
            subjects=[f"{token} {word}" if word else token for token, word in run.named_concepts()],
            live_text=live_text,
            live_class_text=live_text,  # only text-encoder adapters change the class prompts' embeddings
            lr=config.lr,
            hyperparameters=config.to_dict(),
            save=lambda folder: save(pipe, folder, base),
            param_groups=param_groups,
            cut_mix=cut_mix,
        )

    return train_concept(pipe, images, run, config.method, install)
