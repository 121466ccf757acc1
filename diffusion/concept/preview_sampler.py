"""Preview samples of a personalization run: the pipeline as it trains, on one prompt."""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image

from ..architecture import architecture_of


def concept_sampler(pipe, tokenizers, prompt: str, steps: int, seed: int) -> Callable[[], list[Image.Image]]:
    """A `() -> images` sampler for `PreviewCallback` that leaves training exactly as it was.

    Args:
        pipe: the pipeline being trained (its UNet and text encoders carry the adapter).
        tokenizers: one tokenizer per text encoder, knowing the concept's tokens.
        prompt: the preview prompt, already in the tokenizer's words (e.g. with every vector name).
        steps: sampling steps.
        seed: seeds every preview alike, so previews compare across steps.
    """

    arch = architecture_of(pipe)

    @torch.no_grad()
    def sample() -> list[Image.Image]:
        encoders = arch.encoders(pipe)
        modes = [(m, m.training) for m in (pipe.unet, *encoders)]
        # Previews must not consume the training RNG streams, or a run with previews would differ from one without.
        with torch.random.fork_rng(devices=[]):
            for model, _ in modes:
                model.eval()
            cond = arch.encode(encoders, arch.token_ids(tokenizers, [prompt, ""]))
            index = torch.arange(2)
            images = pipe(
                **arch.pipeline_kwargs(cond.select(index[:1]), cond.select(index[1:])),
                num_inference_steps=steps,
                generator=torch.Generator().manual_seed(seed),
            ).images
        for model, was in modes:
            model.train(was)
        return images

    return sample
