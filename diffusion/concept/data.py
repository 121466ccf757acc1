"""Training data of a personalization run: prompt templates and the dataset of cached concept (and class)
latents with prompt indices."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from ..latents import LatentCache

SUBJECT_TEMPLATES = ("a photo of {}", "a picture of {}", "a close-up photo of {}", "a rendering of {}")
"""Subject prompts (DreamBooth style): "{}" becomes "<token> <class word>", or the class word alone for the
class images of prior preservation."""


def fill(templates: tuple[str, ...] | list[str], subject: str) -> list[str]:
    """`templates` with `{}` replaced by `subject`.

    Raises:
        ValueError: if there is no template or one lacks the `{}` placeholder.
    """
    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"prompt templates must be non-empty and each contain '{{}}', got {templates!r}")
    return [t.format(subject) for t in templates]


@dataclass
class ConceptDataset(Dataset):
    """One item per cached latent entry (images and their flips): a fresh latent draw and a prompt index.

    With prior preservation, each item also carries a class-image latent and a class prompt index. All
    randomness uses the global RNGs, which the engine seeds per `(seed, epoch, index)`, so resume is exact.

    Args:
        latents: the concept images' latents.
        num_prompts: number of instance prompts to choose from.
        class_latents: the class images' latents (prior preservation), or None.
        num_class_prompts: number of class prompts.
    """

    latents: LatentCache
    num_prompts: int
    class_latents: LatentCache | None = None
    num_class_prompts: int = 0

    def __len__(self) -> int:
        return len(self.latents)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = {
            "latents": self.latents.sample(index),
            "prompt": torch.randint(self.num_prompts, ()),
        }
        if self.class_latents is not None:
            pick = int(torch.randint(len(self.class_latents), ()))
            item["class_latents"] = self.class_latents.sample(pick)
            item["class_prompt"] = torch.randint(self.num_class_prompts, ())
        return item
