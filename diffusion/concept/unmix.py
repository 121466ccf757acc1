"""Unmix, the regularization half of SVDiff's Cut-Mix-Unmix (Han et al., 2023, §3.2): on a Cut-Mix sample, the
cross-attention of each subject's words should not reach the other subject's half of the image.

The paper penalizes, with an MSE, the cross-attention maps of each subject's tokens in the region of the other
subject. Here: every cross-attention layer of the UNet, the subject's words being its token and class word
("[V1] dog"), the penalty the mean of the squared attention probabilities over those (head, position, word)
entries, averaged over the layers.

The maps are computed again beside the layer's own attention, from the queries and keys its own projections
produced (recorded by hooks, so the gradient reaches what trains and nothing is projected twice), which leaves
the denoising path exactly as without Unmix, whatever attention processor the pipeline uses. They are computed
after the UNet call, outside the blocks that gradient checkpointing recomputes (whose recomputation must repeat
the forward exactly).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator

import torch
from torch import nn

from .cutmix import LEFT, RIGHT


def unmix_penalty(probs: torch.Tensor, sides: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Mean squared attention of each subject's words over the other subject's half of the image.

    Args:
        probs: attention probabilities `[B, heads, height * width, L]` (row-major positions).
        sides: `[B, L]`: `LEFT` / `RIGHT` at the words of the subject on that side, anything else elsewhere.
        height, width: the layer's spatial size; the left subject fills columns `[0, width // 2)`.

    Returns:
        A scalar, 0 when no sample holds a subject's word.
    """
    right_half = (torch.arange(width, device=probs.device) >= width // 2).repeat(height)  # [h * w]
    wrong = ((sides == LEFT)[:, None, :] & right_half[None, :, None]) | (
        (sides == RIGHT)[:, None, :] & ~right_half[None, :, None]
    )  # [B, h * w, L]: a subject's word at a position in the other subject's half
    count = int(wrong.sum()) * probs.shape[1]
    if count == 0:
        return probs.new_zeros(())
    return (probs.float().square() * wrong[:, None]).sum() / count


class UnmixAttention:
    """Watches every cross-attention layer of a UNet: inside `watch`, records each call's queries and keys, from
    which `penalty` computes the Unmix penalty.

    Args:
        unet: the UNet, its adapter already installed (the hooks sit on the cross-attention layers' `to_q` and
            `to_k`, diffusers `Attention` modules with `is_cross_attention`); they stay until `remove`.
    """

    def __init__(self, unet: nn.Module) -> None:
        self._handles = []
        for attn in unet.modules():
            if getattr(attn, "is_cross_attention", False):
                for name in ("to_q", "to_k"):
                    hook = functools.partial(self._record, attn, name)
                    self._handles.append(getattr(attn, name).register_forward_hook(hook))
        self._watching = False
        self._sides = torch.zeros(0, 0, dtype=torch.long)
        self._latent_size = (1, 1)
        self._calls: list[list] = []  # [attention, query, key] per cross-attention call

    def remove(self) -> None:
        """Take the hooks out of the UNet."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @contextlib.contextmanager
    def watch(self, sides: torch.Tensor, latent_size: tuple[int, int]) -> Iterator[None]:
        """Record the cross-attention calls inside this block (and only those: not previews, nor the
        recomputation of gradient checkpointing), forgetting the previous block's.

        Args:
            sides: `[B, L]` word sides of the batch's prompts (`diffusion.concept.cutmix.subject_sides`).
            latent_size: `(h, w)` of the UNet's input latents.
        """
        self._sides, self._latent_size, self._calls = sides, latent_size, []
        self._watching = True
        try:
            yield
        finally:
            self._watching = False

    def penalty(self) -> torch.Tensor:
        """The mean Unmix penalty over the cross-attention calls of the last `watch` block (0 if none)."""
        if not self._calls:
            return torch.zeros(())
        return torch.stack([self._layer_penalty(*call) for call in self._calls]).mean()

    def _record(
        self, attn: nn.Module, name: str, module: nn.Module, args: tuple, output: torch.Tensor
    ) -> None:
        if not self._watching:
            return
        if name == "to_q":  # an attention call projects its queries first, then its keys
            self._calls.append([attn, output, None])
        else:
            self._calls[-1][2] = output

    def _layer_penalty(self, attn: nn.Module, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        probs = attn.get_attention_scores(attn.head_to_batch_dim(query), attn.head_to_batch_dim(key))
        batch, positions = query.shape[0], query.shape[1]
        h0, w0 = self._latent_size
        height = round(math.sqrt(positions * h0 / w0))
        probs = probs.view(batch, -1, positions, probs.shape[-1])
        return unmix_penalty(probs, self._sides.to(probs.device), height, positions // height)
