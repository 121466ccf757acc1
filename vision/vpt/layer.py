"""A ViT block that inserts, replaces or strips prompt tokens around the frozen block."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from studio.core import AdapterLayer


class PromptedBlock(AdapterLayer):
    """Wraps a ViT block; the sequence is `[prefix tokens, prompts, patches]` while prompts are in it.

    Args:
        block: the frozen block.
        num_tokens: prompt length p.
        dim: token width d.
        prefix: number of class/register tokens before the prompts.
        learn: whether this block owns prompts (False for a last block that only strips them).
        insert: the first block: the prompts are inserted rather than replacing the previous ones.
        strip: the last block: prompts are dropped from its output so pooling and the head see the usual tokens.
        patch_size: the patch area enters the init range `sqrt(6 / (3·patch_area + d))` (the authors' Xavier init).
        dropout: dropout on the prompts in training.
        prompts_skip_rope: the block's attention applies a rotary embedding to all but its first
            `attn.num_prefix_tokens` tokens (EVA); while this block runs, the prompts are counted among them.
    """

    def __init__(
        self,
        block: nn.Module,
        num_tokens: int,
        dim: int,
        prefix: int,
        learn: bool,
        insert: bool,
        strip: bool,
        patch_size: int = 16,
        dropout: float = 0.0,
        prompts_skip_rope: bool = False,
    ) -> None:
        super().__init__(block)
        self.num_tokens, self.prefix, self.insert, self.strip, self.dropout = (
            num_tokens,
            prefix,
            insert,
            strip,
            dropout,
        )
        self.prompts_skip_rope = prompts_skip_rope
        self.prompts = None
        if learn:
            bound = math.sqrt(6.0 / (3 * patch_size * patch_size + dim))
            self.prompts = nn.Parameter(torch.empty(1, num_tokens, dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """Insert or replace this block's prompts, run the block, strip prompts after the last block."""
        if not self.active:
            return self.base_layer(x, *args, **kwargs)
        if self.prompts is not None:
            prompts = F.dropout(self.prompts, self.dropout, self.training).expand(x.shape[0], -1, -1)
            rest = x[:, self.prefix :] if self.insert else x[:, self.prefix + self.num_tokens :]
            x = torch.cat([x[:, : self.prefix], prompts.to(x.dtype), rest], dim=1)
        if self.prompts_skip_rope:
            attn = self.base_layer.attn
            attn.num_prefix_tokens += self.num_tokens
            try:
                x = self.base_layer(x, *args, **kwargs)
            finally:
                attn.num_prefix_tokens -= self.num_tokens
        else:
            x = self.base_layer(x, *args, **kwargs)
        if self.strip:
            x = torch.cat([x[:, : self.prefix], x[:, self.prefix + self.num_tokens :]], dim=1)
        return x
