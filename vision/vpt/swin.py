"""Deep VPT on Swin: every block's windowed attention also attends to that block's prompts.

The VPT authors' Swin variant (`PromptedSwinTransformer` in their repository) prepends p prompts to the
token sequence; each block splits them off, copies them into every attention window, and attends over
`[prompts, window]` with zero relative-position bias and no shift mask for the prompt entries; deep VPT
replaces the prompts before every block (and after every patch merging) with that block's own, of the
stage's width. Built here as a wrapper around each block's `WindowAttention`, since timm's Swin blocks
map `(B, H, W, C)` feature maps and have no place for extra tokens. Deviations, both forced by the
prompts living outside the feature map:

- only the window tokens are queried: the prompts' own outputs are not computed. In deep VPT those
  outputs are discarded by the next block anyway, except after the very last block, where the authors
  average them into the pooled features together with the patch tokens; here only the patches are pooled.
- the prompts enter the attention as they are, not through the block's first LayerNorm (which the
  authors apply to the whole sequence): a reparametrization, since a free prompt can take any value a
  normalized one can.

Shallow VPT (prompts of the first block carried through every block and patch merging) is not built.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from studio.core import AdapterLayer, replace_module


class PromptedWindowAttention(AdapterLayer):
    """Wraps a timm Swin `WindowAttention`: the window tokens also attend to `num_tokens` learnt prompts.

    Args:
        attn: the frozen window attention.
        num_tokens: prompt length p.
        init_bound: prompts start uniform in `(-init_bound, init_bound)`.
        dropout: dropout on the prompts in training.
    """

    def __init__(self, attn: nn.Module, num_tokens: int, init_bound: float, dropout: float = 0.0) -> None:
        super().__init__(attn)
        self.dropout = dropout
        self.prompts = nn.Parameter(torch.empty(1, num_tokens, attn.dim).uniform_(-init_bound, init_bound))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attention of the window tokens `x` (windows·B, N, C) over `[prompts, x]`.

        Args:
            x: the tokens of every window.
            mask: the shifted-window mask (windows, N, N) of `-inf`/0, or None.
        """
        if not self.active:
            return self.base_layer(x, mask=mask)
        attn = self.base_layer
        windows, n, _ = x.shape
        heads, p = attn.num_heads, self.prompts.shape[1]
        q, k, v = attn.qkv(x).reshape(windows, n, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        prompts = F.dropout(self.prompts, self.dropout, self.training).to(x.dtype)
        _, pk, pv = attn.qkv(prompts).reshape(1, p, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        k = torch.cat([pk.expand(windows, -1, -1, -1), k], dim=2)
        v = torch.cat([pv.expand(windows, -1, -1, -1), v], dim=2)
        # Prompt columns get no relative-position bias and are never masked (the authors' zero padding).
        bias = F.pad(attn._get_rel_pos_bias(), (p, 0))  # (1, heads, N, p + N)
        if mask is not None:
            masks = mask.shape[0]
            mask = F.pad(mask, (p, 0)).view(1, masks, 1, n, p + n)
            bias = (
                (bias.unsqueeze(1) + mask)
                .expand(windows // masks, -1, -1, -1, -1)
                .reshape(windows, heads, n, p + n)
            )
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.to(q.dtype), dropout_p=attn.attn_drop.p if self.training else 0.0
        )
        return attn.proj_drop(attn.proj(out.transpose(1, 2).reshape(windows, n, -1)))


def is_swin_attention(module: nn.Module) -> bool:
    """Whether `module` is timm's Swin (v1) `WindowAttention`, the attention this wrapper reimplements."""
    from timm.models.swin_transformer import WindowAttention

    return type(module) is WindowAttention


def apply_swin_vpt(model: nn.Module, num_tokens: int, dropout: float) -> None:
    """Wrap every Swin block's attention with its own prompts (deep VPT).

    The init bound is the authors': `sqrt(6 / (3·patch_area + d))`, with d the first stage's width.
    """
    patch = model.patch_embed.patch_size
    patch_area = patch[0] * patch[1] if isinstance(patch, (tuple, list)) else int(patch) ** 2
    bound = math.sqrt(6.0 / (3 * patch_area + model.embed_dim))
    for name, module in list(model.named_modules()):
        if is_swin_attention(module):
            replace_module(model, name, PromptedWindowAttention(module, num_tokens, bound, dropout))
