"""What a control preview samples during training: the condition (or reference image) beside fresh samples.

The callback itself is the shared `diffusion.previews.PreviewCallback`; this module only says what a control
preview samples.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from .dataset import ControlExample
from .sampling import build_call
from .spec import BuiltControl, LoadedControl


def control_sampler(
    pipe: DiffusionPipeline,
    method: str,
    control: BuiltControl,
    example: ControlExample,
    steps: int = 20,
    seed: int = 0,
    num_samples: int = 2,
    guidance_scale: float = 5.0,
) -> Callable[[], list[Image.Image]]:
    """A `sample_fn` for `PreviewCallback`: `[condition or reference image, sample, sample, ...]`.

    Sampling uses its own seeded generators, so previews never change the training run (or its resume).

    Args:
        pipe: the base pipeline.
        method: the control method.
        control: the control being trained (a control that lives in the UNet is already installed there).
        example: the training pair to preview (its caption, condition and image).
        steps: sampling steps.
        seed: first sample's seed.
        num_samples: samples per preview.
        guidance_scale: classifier-free guidance scale.

    Returns:
        The function.
    """
    loaded = LoadedControl(method, control.module, image_encoder=control.image_encoder)
    # A reference-guided control is guided by the training image itself, the others by its condition.
    by_image = loaded.spec.reference
    guide = example.image if by_image else example.condition

    def sample() -> list[Image.Image]:
        pipeline, extra = build_call(
            pipe,
            [loaded],
            control_image=None if by_image else example.condition,
            ip_image=example.image if by_image else None,
            extract=False,
            guidance_scale=guidance_scale,
        )
        samples = [
            pipeline(
                example.caption,
                num_inference_steps=steps,
                guidance_scale=guidance_scale,
                generator=torch.Generator().manual_seed(seed + i),
                **extra,
            ).images[0]
            for i in range(num_samples)
        ]
        return [guide, *samples]

    return sample
