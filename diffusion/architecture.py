"""What differs between Stable Diffusion 1.x/2.x and SDXL pipelines, in one place: their text encoders and
tokenizers, which hidden state the UNet cross-attends to, and the UNet's extra conditioning.

SD 1.x/2.x: one CLIP text encoder; the UNet attends to its last hidden state.
SDXL: two (CLIP ViT-L `text_encoder` and OpenCLIP ViT-bigG `text_encoder_2`, with a projection); the UNet
attends to both penultimate hidden states concatenated, and takes the second encoder's pooled projection plus
the "micro-conditioning" size ids (original size, crop corner, target size) as `added_cond_kwargs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .latents import tokenize


@dataclass(frozen=True)
class TextSlot:
    """One text encoder of a pipeline and its tokenizer.

    Args:
        key: the encoder's name in shared files (`"clip_l"`, `"clip_g"`: SDXL embeddings' keys).
        encoder: the pipeline attribute holding the text encoder.
        tokenizer: the pipeline attribute holding its tokenizer.
        kohya_prefix: the prefix of its keys in a kohya LoRA file.
    """

    key: str
    encoder: str
    tokenizer: str
    kohya_prefix: str


@dataclass
class Conditioning:
    """The text conditioning of a batch of prompts.

    Args:
        hidden: what the UNet cross-attends to, `[B, L, D]`.
        pooled: SDXL's pooled text embedding `[B, D2]`, or None (SD 1.x/2.x).
    """

    hidden: torch.Tensor
    pooled: torch.Tensor | None = None

    def select(self, index: torch.Tensor) -> Conditioning:
        """The rows at `index`."""
        pooled = None if self.pooled is None else self.pooled[index]
        return Conditioning(self.hidden[index], pooled)

    def to(self, device: torch.device) -> Conditioning:
        """The conditioning on `device`."""
        pooled = None if self.pooled is None else self.pooled.to(device)
        return Conditioning(self.hidden.to(device), pooled)

    def where(self, mask: torch.Tensor, other: Conditioning) -> Conditioning:
        """Rows of `other` where `mask` `[B]` is True (`other` may be one row, broadcast), ours elsewhere."""

        def pick(mine: torch.Tensor, theirs: torch.Tensor) -> torch.Tensor:
            return torch.where(mask.view(-1, *[1] * (mine.ndim - 1)), theirs.to(mine), mine)

        pooled = None if self.pooled is None else pick(self.pooled, other.pooled)
        return Conditioning(pick(self.hidden, other.hidden), pooled)

    @staticmethod
    def cat(parts: Sequence[Conditioning]) -> Conditioning:
        """Batches stacked in order."""
        pooled = [p.pooled for p in parts]
        return Conditioning(
            torch.cat([p.hidden for p in parts]), None if pooled[0] is None else torch.cat(pooled)
        )


@dataclass(frozen=True)
class Architecture:
    """How one family of pipelines encodes prompts and conditions its UNet.

    Args:
        name: `"sd"` or `"sdxl"`.
        slots: the text encoders, in the order their hidden states are concatenated.
        hidden_layer: the hidden state the UNet attends to (`-1`: last, `-2`: penultimate).
        pooled: whether the UNet takes the last encoder's pooled projection and the size ids.
    """

    name: str
    slots: tuple[TextSlot, ...]
    hidden_layer: int
    pooled: bool

    def encoders(self, pipe) -> list[nn.Module]:
        """The pipeline's text encoders, in slot order."""
        return [getattr(pipe, slot.encoder) for slot in self.slots]

    def tokenizers(self, pipe) -> list:
        """The pipeline's tokenizers, in slot order."""
        return [getattr(pipe, slot.tokenizer) for slot in self.slots]

    def token_ids(self, tokenizers: Sequence, prompts: Sequence[str]) -> list[torch.Tensor]:
        """Each tokenizer's padded ids of `prompts` (`[len(prompts), L]` each)."""
        return [tokenize(tokenizer, prompts) for tokenizer in tokenizers]

    def encode(self, encoders: Sequence[nn.Module], ids: Sequence[torch.Tensor]) -> Conditioning:
        """Encode token ids exactly as the pipeline's `encode_prompt` does (no clip skip).

        Args:
            encoders: the text encoders (possibly carrying adapters), in slot order.
            ids: their token ids, in slot order.

        Returns:
            The conditioning, differentiable with respect to trainable text-encoder parameters.
        """
        hidden, pooled = [], None
        for encoder, input_ids in zip(encoders, ids, strict=True):
            out = encoder(input_ids.to(encoder.device), output_hidden_states=self.hidden_layer != -1)
            hidden.append(out[0] if self.hidden_layer == -1 else out.hidden_states[self.hidden_layer])
            pooled = out[0] if self.pooled else None  # SDXL pools from the last encoder's projection
        return Conditioning(torch.cat(hidden, dim=-1), pooled)

    @torch.no_grad()
    def encode_frozen(self, pipe, prompts: Sequence[str], batch_size: int = 16) -> Conditioning:
        """The conditioning of `prompts` through the pipeline's own (frozen) text encoders, computed once.

        Args:
            pipe: the pipeline (or its components).
            prompts: the prompts.
            batch_size: prompts per encoder call (a large dataset's captions are not encoded in one batch).

        Returns:
            `[len(prompts), ...]` rows on the CPU, in the encoders' dtype.
        """
        encoders, tokenizers = self.encoders(pipe), self.tokenizers(pipe)
        parts = [
            self.encode(encoders, self.token_ids(tokenizers, prompts[start : start + batch_size])).to("cpu")
            for start in range(0, len(prompts), batch_size)
        ]
        return Conditioning.cat(parts)

    def unet_kwargs(self, cond: Conditioning, height: int, width: int) -> dict:
        """Keyword arguments of a UNet call for `cond` at an image size of `height` × `width` pixels.

        The size ids are those of diffusers' SDXL trainers for images resized to the training resolution:
        original size = target size = the image's, crop corner (0, 0).
        """
        kwargs = {"encoder_hidden_states": cond.hidden}
        if self.pooled:
            ids = torch.tensor([height, width, 0, 0, height, width], dtype=cond.hidden.dtype)
            time_ids = ids.to(cond.hidden.device).expand(cond.hidden.shape[0], -1)
            kwargs["added_cond_kwargs"] = {"text_embeds": cond.pooled, "time_ids": time_ids}
        return kwargs

    def pipeline_kwargs(self, cond: Conditioning, negative: Conditioning) -> dict:
        """Keyword arguments of a pipeline call that passes precomputed prompt embeddings."""
        kwargs = {"prompt_embeds": cond.hidden, "negative_prompt_embeds": negative.hidden}
        if self.pooled:
            kwargs["pooled_prompt_embeds"] = cond.pooled
            kwargs["negative_pooled_prompt_embeds"] = negative.pooled
        return kwargs


SD = Architecture("sd", (TextSlot("clip_l", "text_encoder", "tokenizer", "lora_te"),), -1, False)
SDXL = Architecture(
    "sdxl",
    (
        TextSlot("clip_l", "text_encoder", "tokenizer", "lora_te1"),
        TextSlot("clip_g", "text_encoder_2", "tokenizer_2", "lora_te2"),
    ),
    -2,
    True,
)


def architecture_of(pipe) -> Architecture:
    """The architecture of a pipeline (or of its components): SDXL when it has a second text encoder."""
    return SDXL if getattr(pipe, "text_encoder_2", None) is not None else SD
