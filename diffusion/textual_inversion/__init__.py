"""Textual Inversion: new token embeddings for a concept, saved in diffusers' `learned_embeds` format."""

from .config import TextualInversionConfig
from .layer import ConceptEmbedding
from .model import (
    EMBEDDINGS_FILE,
    add_concept,
    check_new_token,
    concept_layer,
    expand_prompt,
    read_embeddings,
    save_embeddings,
)

__all__ = [
    "EMBEDDINGS_FILE",
    "ConceptEmbedding",
    "TextualInversionConfig",
    "add_concept",
    "check_new_token",
    "concept_layer",
    "expand_prompt",
    "read_embeddings",
    "save_embeddings",
]
