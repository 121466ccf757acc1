"""Training data of a personalization run: prompt templates and the dataset of cached concept (and class)
latents with prompt indices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset

from ..latents import LatentCache
from .cutmix import CutMixUnmix, cut_mix

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
    """One item per cached latent entry of every concept (images and their flips): a fresh latent draw and the
    index of one of that concept's prompts.

    With prior preservation, each item also carries a latent of its concept's class images and a class prompt
    index; with Cut-Mix, an item is, with `mix.probability`, a collage of its latent and another concept's
    (`diffusion.concept.cutmix`) with one of that pair's prompts. All randomness uses the global RNGs, which the
    engine seeds per `(seed, epoch, index)`, so resume is exact; without Cut-Mix an item draws exactly what a
    one-concept item always drew.

    Args:
        latents: each concept's image latents.
        prompts: each concept's prompt indices.
        class_latents: each concept's class-image latents (prior preservation), or None.
        class_prompts: each concept's class prompt indices.
        mix: Cut-Mix settings, or None.
        mix_prompts: with `mix`, the prompt indices of each ordered pair `(left, right)` of concepts.
    """

    latents: Sequence[LatentCache]
    prompts: Sequence[range]
    class_latents: Sequence[LatentCache] | None = None
    class_prompts: Sequence[range] = ()
    mix: CutMixUnmix | None = None
    mix_prompts: Mapping[tuple[int, int], range] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(cache) for cache in self.latents)

    def _locate(self, index: int) -> tuple[int, int]:
        for concept, cache in enumerate(self.latents):
            if index < len(cache):
                return concept, index
            index -= len(cache)
        raise IndexError(index)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        concept, entry = self._locate(index)
        latents, prompts = self.latents[concept].sample(entry), self.prompts[concept]
        if self.mix is not None and len(self.latents) > 1 and float(torch.rand(())) < self.mix.probability:
            latents, prompts = self._collage(concept, latents)
        item = {"latents": latents, "prompt": _pick(prompts)}
        if self.class_latents is not None:
            cache = self.class_latents[concept]
            item["class_latents"] = cache.sample(_pick(range(len(cache))))
            item["class_prompt"] = _pick(self.class_prompts[concept])
        return item

    def _collage(self, concept: int, latents: torch.Tensor) -> tuple[torch.Tensor, range]:
        """`latents` beside a draw of another concept, on a random side, and the prompts of that pair."""
        other = _pick(range(len(self.latents) - 1))
        other += 1 if other >= concept else 0
        drawn = self.latents[other].sample(_pick(range(len(self.latents[other]))))
        pair, halves = (concept, other), (latents, drawn)
        if float(torch.rand(())) < 0.5:
            pair, halves = pair[::-1], halves[::-1]
        return cut_mix(*halves), self.mix_prompts[pair]


def _pick(choices: range) -> int:
    """One of `choices`, drawn with the global RNG."""
    return choices[int(torch.randint(len(choices), ()))]
