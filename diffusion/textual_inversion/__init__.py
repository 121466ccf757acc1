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

register_method(
    TextualInversionConfig,
    apply_textual_inversion,
    domain="diffusion",
    task="personalize",
    train=train_textual_inversion,
    spec=ArtifactSpec(
        recognize=is_embedding_artifact,
        loads_with="pipe.load_textual_inversion(folder)",
        applied=textual_inversions_loaded,
    ),
)

__all__ = [
    "EMBEDDINGS_FILE",
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
