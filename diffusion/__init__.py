"""Diffusion: Stable-Diffusion-format pipelines and their personalization.

Example:
    >>> import diffusion
    >>> pipe = diffusion.load_pipeline("studio/shapes-sd")
    >>> image = pipe("a red circle on a grey background", num_inference_steps=20).images[0]
"""

from .pipeline import load_pipeline

__all__ = ["load_pipeline"]
