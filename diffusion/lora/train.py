"""`train_lora`: DreamBooth-LoRA, a concept as low-rank updates of the attention projections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..concept import ConceptRun, concept_run, train_subject
from .config import DiffusionLoRAConfig
from .format import save_lora
from .model import text_encoder_config


def train_lora(
    pipe,
    images,
    config: DiffusionLoRAConfig | dict[str, Any] | None = None,
    *,
    run: ConceptRun | None = None,
    **options: Any,
) -> Path:
    """Teach `pipe` a concept with LoRA on its attention projections (DreamBooth's subject prompts, optional
    prior preservation); the pipeline itself is left unchanged.

    Args:
        pipe: a Stable-Diffusion-format pipeline (`diffusion.load_pipeline`).
        images: the concept's images: a folder, paths, PIL images.
        config: a `DiffusionLoRAConfig` or a dict of its fields (None: the defaults).
        run: the run's options (`diffusion.concept.ConceptRun`); None: the defaults.
        **options: `ConceptRun` fields overriding `run`'s (e.g. `token=`, `class_word=`, `steps=`).

    Returns:
        The artifact folder: `pytorch_lora_weights.safetensors` (stock `pipe.load_lora_weights(folder)`),
        `lora_kohya.safetensors` (A1111, ComfyUI) and `studio_artifact.json`.

    Raises:
        ValueError: an unknown option, a bad value, no usable images.
    """
    config = DiffusionLoRAConfig.coerce(config)
    text_config = text_encoder_config(config) if config.train_text_encoder else None
    return train_subject(
        pipe,
        images,
        config,
        concept_run(run, options),
        lambda pipe, folder, _base: save_lora(pipe, folder),
        text_config=text_config,
    )
