"""Class images for prior preservation, generated once by the base model and kept in the run folder."""

from __future__ import annotations

from pathlib import Path

import torch

from ..images import list_image_files

SAMPLING_STEPS = 25


def class_images(pipe, class_word: str, count: int, folder: Path, seed: int) -> list[Path]:
    """`count` images of "a photo of a <class_word>" from the base pipeline, in `folder`.

    Images already in `folder` are kept, so a resumed run trains on the same ones.

    Args:
        pipe: the base pipeline (before any adapter is installed).
        class_word: the concept's class, e.g. `"cat"`.
        count: how many images.
        folder: where they are written (`0000.png`, ...).
        seed: seeds image `i` with `seed * 100_003 + i`.

    Returns:
        The image files (read by `load_images`, as the user's images are).
    """
    folder.mkdir(parents=True, exist_ok=True)
    have = list_image_files(folder)
    for i in range(len(have), count):
        generator = torch.Generator().manual_seed(seed * 100_003 + i)
        prompt = f"a photo of a {class_word}"
        image = pipe(prompt, num_inference_steps=SAMPLING_STEPS, generator=generator).images[0]
        image.save(folder / f"{i:04d}.png")
    return list_image_files(folder)[:count]
