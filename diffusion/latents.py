"""Computed-once training inputs: VAE latents of the training images (with flips); prompt token ids (their
conditioning is `diffusion.architecture`'s, for every method and architecture).

Encoding images with the VAE costs more than a UNet step on small models and never changes while the VAE is
frozen, so it is done once before training. The latent *distribution* (mean and std) is kept, not one sample,
so every epoch can still draw a fresh latent as the diffusers scripts do, at the cost of one `randn`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LatentCache:
    """Scaled latent distributions of a set of images, optionally followed by their horizontal flips.

    Entry `i < n_images` is image `i`; entry `n_images + i` is its mirror image (when `flip` was used).

    Args:
        mean: scaled latent means, `[M, C, h, w]`, float32 on the CPU.
        std: scaled latent standard deviations, same shape.
        n_images: number of source images (`M` is `n_images` or `2 * n_images`).
    """

    mean: torch.Tensor
    std: torch.Tensor
    n_images: int

    def __len__(self) -> int:
        return self.mean.shape[0]

    def source_index(self, index: int) -> int:
        """The source image of entry `index` (a flip maps to the image it mirrors)."""
        return index % self.n_images

    def sample(self, index: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw one latent of entry `index`: `mean + std * N(0, 1)`, from `generator` or the global RNG.

        Args:
            index: entry index.
            generator: optional CPU generator.

        Returns:
            A `[C, h, w]` float32 tensor.
        """
        noise = torch.randn(self.mean.shape[1:], generator=generator, dtype=self.mean.dtype)
        return self.mean[index] + self.std[index] * noise


@torch.no_grad()
def encode_latents(
    vae: nn.Module, pixels: torch.Tensor, flip: bool = True, batch_size: int = 8
) -> LatentCache:
    """Encode images once with a (frozen) `AutoencoderKL`, scaled as the UNet expects.

    Args:
        vae: the pipeline's VAE; its device and dtype are used, its `scaling_factor` (and `shift_factor`,
            when set) applied.
        pixels: images in [-1, 1], `[N, 3, H, W]` (see `diffusion.images.images_to_tensor`).
        flip: also encode the horizontally mirrored images (a mirrored latent is not the mirror of a latent).
        batch_size: images per VAE call.

    Returns:
        A `LatentCache` with `N` (or `2N` with `flip`) entries.

    Raises:
        ValueError: for an empty or wrongly shaped `pixels`.
    """
    if pixels.ndim != 4 or pixels.shape[1] != 3 or pixels.shape[0] == 0:
        raise ValueError(f"pixels must be a non-empty [N, 3, H, W] tensor, got shape {tuple(pixels.shape)}")
    param = next(vae.parameters())
    scale = float(vae.config.scaling_factor)
    shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
    batches = [pixels, pixels.flip(-1)] if flip else [pixels]
    means, stds = [], []
    for images in batches:
        for chunk in images.split(batch_size):
            dist = vae.encode(chunk.to(param.device, param.dtype)).latent_dist
            means.append(((dist.mean.float() - shift) * scale).cpu())
            stds.append((dist.std.float() * scale).cpu())
    return LatentCache(torch.cat(means), torch.cat(stds), n_images=pixels.shape[0])


def tokenize(tokenizer, prompts: Sequence[str]) -> torch.Tensor:
    """Token ids padded/truncated to the tokenizer's `model_max_length`, as Stable Diffusion pipelines do.

    Args:
        tokenizer: a CLIP tokenizer.
        prompts: the prompts.

    Returns:
        LongTensor `[len(prompts), model_max_length]`.
    """
    return tokenizer(
        list(prompts),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
