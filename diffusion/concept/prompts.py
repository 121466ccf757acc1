"""Prompt embeddings of a personalization run, by index: cached once when training cannot change them."""

from __future__ import annotations

import torch
from torch import nn

from ..latents import PromptCache, text_embeddings, tokenize


class PromptSource:
    """Embeddings of a fixed list of prompts, looked up by index.

    When the text encoder's output for these prompts is fixed during training (nothing in it trains, or only
    rows the prompts do not use), they are encoded once; otherwise they are encoded on every lookup, so the
    gradient reaches what trains.

    Args:
        tokenizer: the tokenizer (with the concept's tokens, when the method adds any).
        text_encoder: the pipeline's text encoder.
        prompts: the prompts.
        live: encode on every lookup instead of once.
    """

    def __init__(self, tokenizer, text_encoder: nn.Module, prompts: list[str], live: bool) -> None:
        self.text_encoder = text_encoder
        self.ids = tokenize(tokenizer, prompts)
        self.cached = None if live else PromptCache(tokenizer, text_encoder)(prompts)

    def __call__(self, index: torch.Tensor) -> torch.Tensor:
        """The embeddings of the prompts at `index`, on `index`'s device."""
        if self.cached is not None:
            return self.cached[index.cpu()].to(index.device)
        return text_embeddings(self.text_encoder, self.ids[index.cpu()])
