"""Preview samples of a personalization run: the pipeline as it trains, on one prompt."""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image

from ..latents import text_embeddings, tokenize


def concept_sampler(pipe, tokenizer, prompt: str, steps: int, seed: int) -> Callable[[], list[Image.Image]]:
    """A `() -> images` sampler for `PreviewCallback` that leaves training exactly as it was.

    Args:
        pipe: the pipeline being trained (its UNet and text encoder carry the adapter).
        tokenizer: the tokenizer that knows the concept's tokens.
        prompt: the preview prompt, already in the tokenizer's words (e.g. with every vector name).
        steps: sampling steps.
        seed: seeds every preview alike, so previews compare across steps.
    """

    @torch.no_grad()
    def sample() -> list[Image.Image]:
        modes = [(m, m.training) for m in (pipe.unet, pipe.text_encoder)]
        # Previews must not consume the training RNG streams, or a run with previews would differ from one without.
        with torch.random.fork_rng(devices=[]):
            for model, _ in modes:
                model.eval()
            embeds = text_embeddings(pipe.text_encoder, tokenize(tokenizer, [prompt, ""]))
            images = pipe(
                prompt_embeds=embeds[:1],
                negative_prompt_embeds=embeds[1:],
                num_inference_steps=steps,
                generator=torch.Generator().manual_seed(seed),
            ).images
        for model, was in modes:
            model.train(was)
        return images

    return sample
