"""Cut-Mix, the data half of SVDiff's Cut-Mix-Unmix (Han et al., 2023, §3.2): training samples that join two
concepts side by side, with a prompt that names both in place.

The paper builds the collage from the images (CutMix-like) and writes prompts such as "photo of a [V1] dog on
the left and a [V2] sculpture on the right" or "photo of a [V2] sculpture and a [V1] dog". Here the collage is
cut from the cached VAE latents instead: the central half-width strip of one concept's latent beside the central
strip of the other's (subjects are photographed centred, so the strips keep them). A latent column covers eight
pixel columns and the VAE is local, so this is the latent of the pixel collage up to the seam, at no VAE cost.
The paper mixes the prior-preservation pairs alike; here the class images of prior preservation stay unmixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

MIX_TEMPLATES = ("a photo of {left} on the left and {right} on the right", "a photo of {right} and {left}")
"""The paper's two prompt forms: positions named, and the bare "and" with the right-hand subject first (so the
order of mention does not stand in for the side)."""

NO_SUBJECT, LEFT, RIGHT = -1, 0, 1
"""What a prompt position holds for Unmix: no subject's word, the left subject's, the right subject's."""


@dataclass(frozen=True)
class CutMixUnmix:
    """Cut-Mix-Unmix settings of a run.

    Args:
        probability: chance that a training sample is a two-concept collage instead of one concept's image.
        unmix_weight: weight of the Unmix attention penalty (`diffusion.concept.unmix`) in the loss.
    """

    probability: float
    unmix_weight: float


def cut_mix(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """The collage of two latents: the central half of `left` beside the central half of `right`.

    Args:
        left, right: `[C, h, w]` latents of one size.

    Returns:
        `[C, h, w]`: columns `[0, w // 2)` from `left`, the rest from `right`.
    """
    width = left.shape[-1]
    halves = (width // 2, width - width // 2)
    strips = [
        x[..., (width - n) // 2 : (width - n) // 2 + n] for x, n in zip((left, right), halves, strict=True)
    ]
    return torch.cat(strips, dim=-1)


def mix_prompts(subjects: Sequence[str]) -> tuple[list[str], dict[tuple[int, int], range]]:
    """Every Cut-Mix prompt of a run: each ordered pair of concepts (left, right) in each of `MIX_TEMPLATES`.

    Args:
        subjects: each concept's words in prompts (e.g. `"<a> cat"`), in the run's order.

    Returns:
        `(prompts, pairs)`: `pairs[(left, right)]` are the indices in `prompts` of the prompts that show concept
        `left` on the left and concept `right` on the right.
    """
    prompts: list[str] = []
    pairs: dict[tuple[int, int], range] = {}
    for left, a in enumerate(subjects):
        for right, b in enumerate(subjects):
            if left != right:
                pairs[left, right] = range(len(prompts), len(prompts) + len(MIX_TEMPLATES))
                prompts += [t.format(left=f"a {a}", right=f"a {b}") for t in MIX_TEMPLATES]
    return prompts, pairs


def subject_sides(
    ids: torch.Tensor, subject_ids: Sequence[Sequence[int]], pair: tuple[int, int]
) -> torch.Tensor:
    """Which side each position of a Cut-Mix prompt belongs to: `LEFT` for the left subject's words, `RIGHT` for
    the right one's, `NO_SUBJECT` elsewhere.

    Args:
        ids: the prompt's token ids `[L]`.
        subject_ids: each concept's token ids (its words in prompts, without special tokens).
        pair: the concepts on the left and on the right.

    Returns:
        `[L]` long tensor.

    Raises:
        ValueError: a subject's words are not in the prompt (e.g. cut off at the tokenizer's length limit).
    """
    sides = torch.full(ids.shape, NO_SUBJECT, dtype=torch.long)
    row = ids.tolist()
    for side, concept in zip((LEFT, RIGHT), pair, strict=True):
        words = list(subject_ids[concept])
        start = next((i for i in range(len(row) - len(words) + 1) if row[i : i + len(words)] == words), None)
        if start is None:
            raise ValueError(
                f"a Cut-Mix prompt lost concept {concept}'s words (prompt longer than the tokenizer's limit?)"
            )
        sides[start : start + len(words)] = side
    return sides
