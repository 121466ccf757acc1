"""The input-embedding wrapper that adds trainable rows for new tokens beside a frozen embedding table."""

from __future__ import annotations

import torch
from torch import nn

from studio.core import AdapterLayer


class ConceptEmbedding(AdapterLayer):
    """Looks ids below `first_id` up in the frozen table and ids from `first_id` on in `new_embeddings`.

    The table is never resized or differentiated: backward reaches only the `[num_new, dim]` parameter, which
    is what makes a step cheaper than the diffusers example's full-table gradient.

    Args:
        base_layer: the text encoder's token embedding (`nn.Embedding`), frozen.
        num_new: number of new token rows.
        first_id: id of the first new token in the tokenizer.
    """

    def __init__(self, base_layer: nn.Embedding, num_new: int, first_id: int) -> None:
        super().__init__(base_layer)
        weight = base_layer.weight
        self.first_id = int(first_id)
        self.new_embeddings = nn.Parameter(torch.zeros(num_new, weight.shape[1], dtype=weight.dtype))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Embed `input_ids` (`[B, L]`), new tokens from the trainable rows."""
        table_size = self.base_layer.num_embeddings
        out = self.base_layer(input_ids.clamp(max=table_size - 1))
        if not self.active:
            return out
        is_new = input_ids >= self.first_id
        rows = self.new_embeddings[
            (input_ids - self.first_id).clamp(min=0, max=self.new_embeddings.shape[0] - 1)
        ]
        return torch.where(is_new.unsqueeze(-1), rows.to(out.dtype), out)
