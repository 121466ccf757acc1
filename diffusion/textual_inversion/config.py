"""Configuration of Textual Inversion: the new token, its number of vectors and the word it starts from."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import hfield
from studio.engine import check_number

from ..adapter_config import DiffusionAdapterConfig


@dataclass
class TextualInversionConfig(DiffusionAdapterConfig):
    """Textual Inversion (Gal et al., 2022): learn new token embeddings for a concept; nothing else trains.

    Only the new rows exist as parameters (the embedding table is not resized or differentiated while training),
    so a step computes and stores gradients for `num_vectors × dim` numbers, not for the whole vocabulary.
    """

    method = "textual_inversion"
    one_concept_per_run = True
    merge_unsupported = (
        "new tokens extend the vocabulary; save the embeddings and load them as tokens instead"
    )

    token: str = hfield(
        "<concept>",
        "The new placeholder token used in prompts, e.g. '<my-cat>' (the run's token option sets it).",
        option=False,
    )
    init_token: str = hfield(
        "",
        "Existing word whose embedding initialises every vector (the mean of its pieces if it splits); empty: "
        "the concept's class word when there is one, else random init from the embedding table's statistics.",
    )
    num_vectors: int = hfield(
        1, "Embedding vectors per token: more capture more detail but overfit sooner (the paper used 1)."
    )

    lr: float | None = hfield(
        None,
        "Learning rate; empty: 5e-4 × batch size × gradient accumulation steps (the diffusers recipe's scaling).",
    )

    def validate(self) -> None:
        """Reject an empty or whitespace-containing token, fewer than one vector and a learning rate <= 0."""
        if not self.token or any(c.isspace() for c in self.token):
            raise ValueError(f"token must be one word without spaces, got {self.token!r}")
        if int(self.num_vectors) < 1:
            raise ValueError(f"num_vectors must be >= 1, got {self.num_vectors}")
        if self.lr is not None:
            check_number("lr", self.lr)

    def token_names(self) -> list[str]:
        """The vocabulary entries of the concept: `token`, `token_1`, ... (diffusers' multi-vector naming)."""
        return [self.token] + [f"{self.token}_{i}" for i in range(1, self.num_vectors)]
