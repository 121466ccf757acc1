"""Textual Inversion: new token embeddings for a concept, saved in diffusers' `learned_embeds` format."""

from studio.core import register_method

from ..artifacts import ArtifactSpec
from .config import TextualInversionConfig
from .layer import ConceptEmbedding
from .model import (
    EMBEDDINGS_FILE,
    add_concept,
    add_concept_to_pipeline,
    apply_textual_inversion,
    check_new_token,
    concept_layer,
    expand_prompt,
    is_embedding_artifact,
    read_embeddings,
    read_encoder_embeddings,
    save_embeddings,
)
from .sampling import textual_inversions_loaded
from .train import TI_TEMPLATES, train_textual_inversion

LOADS_WITH = (
    f"pipe.load_textual_inversion(folder); on SDXL, with state = load_file(folder/'{EMBEDDINGS_FILE}'), "
    "one call per text encoder: pipe.load_textual_inversion(state['clip_l'], token=token, "
    "text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer) and the same for state['clip_g'] with "
    "pipe.text_encoder_2, pipe.tokenizer_2"
)
"""How stock diffusers loads an embedding (an SDXL file holds one per text encoder, which its loader reads one
at a time)."""

register_method(
    TextualInversionConfig,
    apply_textual_inversion,
    domain="diffusion",
    task="personalize",
    train=train_textual_inversion,
    spec=ArtifactSpec(
        recognize=is_embedding_artifact,
        loads_with=LOADS_WITH,
        applied=textual_inversions_loaded,
    ),
)

__all__ = [
    "EMBEDDINGS_FILE",
    "LOADS_WITH",
    "TI_TEMPLATES",
    "ConceptEmbedding",
    "TextualInversionConfig",
    "add_concept",
    "add_concept_to_pipeline",
    "apply_textual_inversion",
    "check_new_token",
    "concept_layer",
    "expand_prompt",
    "is_embedding_artifact",
    "read_embeddings",
    "read_encoder_embeddings",
    "save_embeddings",
    "textual_inversions_loaded",
    "train_textual_inversion",
]
