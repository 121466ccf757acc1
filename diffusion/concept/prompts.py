"""Prompt conditioning of a personalization run, by index: cached once when training cannot change it."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..architecture import Architecture, Conditioning


class PromptSource:
    """The conditioning of a fixed list of prompts, looked up by index.

    When the text encoders' output for these prompts is fixed during training (nothing in them trains, or only
    rows the prompts do not use), they are encoded once; otherwise they are encoded on every lookup, so the
    gradient reaches what trains.

    Args:
        architecture: the pipeline's architecture (`diffusion.architecture.architecture_of`).
        tokenizers: one tokenizer per text encoder (with the concept's tokens, when the method adds any).
        encoders: the pipeline's text encoders.
        prompts: the prompts.
        live: encode on every lookup instead of once.
    """

    def __init__(
        self,
        architecture: Architecture,
        tokenizers: Sequence,
        encoders: Sequence[nn.Module],
        prompts: list[str],
        live: bool,
    ) -> None:
        self.architecture, self.encoders = architecture, list(encoders)
        self.ids = architecture.token_ids(tokenizers, prompts)
        self.cached = None
        if not live:
            with torch.no_grad():
                self.cached = architecture.encode(self.encoders, self.ids)

    def __call__(self, index: torch.Tensor) -> Conditioning:
        """The conditioning of the prompts at `index`, on `index`'s device."""
        if self.cached is not None:
            return self.cached.select(index.cpu()).to(index.device)
        return self.architecture.encode(self.encoders, [ids[index.cpu()] for ids in self.ids])
