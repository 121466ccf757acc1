"""`generate`: sample with any mix of trained artifacts, leaving the pipeline as it was."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)
from PIL import Image

from studio.core import list_methods

from .architecture import architecture_of
from .artifacts import ArtifactInfo, artifact_spec, base_model_of, check_artifact, read_artifact
from .control.sampling import prepare as prepare_control

SCHEDULERS = {
    "ddim": DDIMScheduler,
    "ddpm": DDPMScheduler,
    "pndm": PNDMScheduler,
    "euler": EulerDiscreteScheduler,
    "euler_a": EulerAncestralDiscreteScheduler,
    "heun": HeunDiscreteScheduler,
    "dpm++": DPMSolverMultistepScheduler,
    "unipc": UniPCMultistepScheduler,
}
"""Scheduler names `generate` accepts (each built from the pipeline's own scheduler config)."""

Artifact = str | os.PathLike | ArtifactInfo

SIZE_CONDITIONING = {
    "original_size": 1,
    "target_size": 1,
    "crops_coords_top_left": 0,
    "negative_original_size": 1,
    "negative_target_size": 1,
    "negative_crops_coords_top_left": 0,
}
"""SDXL's micro-conditioning arguments (`(height, width)` or `(top, left)` pairs) -> their least value. They go
to the pipeline call as diffusers defines them; left out, diffusers' defaults hold (original size = target size
= the output size, crop corner (0, 0))."""


@contextlib.contextmanager
def scheduler_swapped(pipe, scheduler) -> Iterator[None]:
    """Use another sampler inside a `with` block: a name from `SCHEDULERS`, a scheduler object, or None."""
    if scheduler is None:
        yield
        return
    if isinstance(scheduler, str):
        if scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
        scheduler = SCHEDULERS[scheduler].from_config(pipe.scheduler.config)
    original = pipe.scheduler
    pipe.scheduler = scheduler
    try:
        yield
    finally:
        pipe.scheduler = original


def read_adapters(pipe, adapters: Sequence[Artifact], check_base_model: bool = True) -> list[ArtifactInfo]:
    """Read artifacts and refuse any made for another base model than `pipe`'s.

    Raises:
        ValueError: an unknown artifact, one for another base model, or more than one artifact that changes
            the pipeline's layers (`ArtifactSpec.changes_layers`).
    """
    base = base_model_of(pipe) if check_base_model else None
    infos = [a if isinstance(a, ArtifactInfo) else read_artifact(a) for a in adapters]
    for info in infos:
        check_artifact(info, base_model=base)
    layered = [info for info in infos if artifact_spec(info.kind).changes_layers]
    if len(layered) > 1:
        raise ValueError(
            f"{' and '.join(f'{i.path} ({i.kind})' for i in layered)} both change the pipeline's layers, and such "
            "adapters do not stack: use one per call (or merge one into the UNet first with export_merged_unet)"
        )
    return infos


def check_size_conditioning(pipe, kwargs: dict, names: dict[str, str] | None = None) -> None:
    """Refuse SDXL's size conditioning for a pipeline without it, or a value that is not a pair of whole numbers.

    Args:
        pipe: the base pipeline.
        kwargs: the extra arguments of a `generate` call.
        names: how the user spells each argument in the error (e.g. the CLI's `--original-size`); default
            the keyword's name.

    Raises:
        ValueError: a size-conditioning argument for an SD 1.x/2.x pipeline, or a bad pair (one line naming it).
    """
    names = names or {}
    given = [key for key in SIZE_CONDITIONING if kwargs.get(key) is not None]
    if given and not architecture_of(pipe).pooled:
        raise ValueError(
            f"{', '.join(names.get(k, k) for k in given)}: SDXL's size conditioning, and this is an SD 1.x/2.x "
            "pipeline, whose UNet takes no size ids; leave it out"
        )
    for key in given:
        value, least = kwargs[key], SIZE_CONDITIONING[key]
        pair = isinstance(value, (tuple, list)) and len(value) == 2
        if not pair or not all(isinstance(v, int) and not isinstance(v, bool) and v >= least for v in value):
            raise ValueError(
                f"{names.get(key, key)} must be two whole numbers >= {least} (height, width or top, left), "
                f"got {value!r}"
            )


def generate(
    pipe,
    prompt: str | list[str],
    adapters: Sequence[Artifact] = (),
    negative_prompt: str | list[str] | None = None,
    num_inference_steps: int = 30,
    guidance_scale: float = 7.5,
    seed: int = 0,
    num_images: int = 1,
    scheduler=None,
    height: int | None = None,
    width: int | None = None,
    control_image=None,
    ip_image=None,
    check_base_model: bool = True,
    **kwargs,
) -> list[Image.Image]:
    """Sample images with any mix of trained artifacts; the pipeline is restored afterwards.

    Args:
        pipe: the base pipeline (`diffusion.load_pipeline`).
        prompt: the prompt (or one per image batch entry), e.g. `"a photo of <my-cat> on a beach"`.
        adapters: artifact folders/files of any registered diffusion method: Textual Inversions (several
            tokens allowed, A1111 `.pt` too), at most one that changes the pipeline's layers (SVDiff, LoRA, DiffFit, Custom Diffusion), and control artifacts (ControlNet,
            T2I-Adapter, IP-Adapter). Each personalization method applies its own (`ArtifactSpec.applied`);
            the control artifacts go to `diffusion.control.prepare`.
        negative_prompt: what to steer away from.
        num_inference_steps: sampling steps.
        guidance_scale: classifier-free guidance scale.
        seed: the seed; the same seed, prompt and settings give the same images.
        num_images: images per prompt.
        scheduler: a sampler name from `SCHEDULERS` (e.g. `"dpm++"`, `"euler_a"`), a scheduler object, or None
            for the pipeline's own.
        height: image height (default: the model's resolution).
        width: image width.
        control_image: the condition image for ControlNet / T2I-Adapter artifacts.
        ip_image: the reference image for an IP-Adapter artifact.
        check_base_model: refuse artifacts recorded for another base model.
        **kwargs: passed to `diffusion.control.sampling.prepare` when control is used, else to the pipeline call;
            on SDXL these include the size conditioning (`SIZE_CONDITIONING`: `original_size`,
            `crops_coords_top_left`, `target_size` and their `negative_` forms).

    Returns:
        The images.

    Raises:
        ValueError: no steps or no images asked for, an artifact of an unknown kind or for another base model,
            two artifacts that both change the pipeline's layers (`ArtifactSpec.changes_layers`), an unknown
            scheduler, control inputs that the control artifacts cannot use, or size conditioning for an SD
            1.x/2.x pipeline.
    """
    check_size_conditioning(pipe, kwargs)
    if num_inference_steps < 1 or num_images < 1:
        raise ValueError(
            f"num_inference_steps and num_images must be >= 1, got {num_inference_steps}, {num_images}"
        )
    infos = read_adapters(pipe, adapters, check_base_model)
    controls = [info for info in infos if info.is_control]
    with contextlib.ExitStack() as stack:
        stack.enter_context(scheduler_swapped(pipe, scheduler))
        for method in list_methods("diffusion", "personalize"):  # each applies its own artifacts
            own = [info for info in infos if info.kind == method.name]
            if own:
                stack.enter_context(method.spec.applied(pipe, own))
        call, extra = pipe, dict(kwargs)
        if controls or control_image is not None or ip_image is not None:
            # The seam to the control methods: they pick the pipeline (e.g. a ControlNet pipeline sharing
            # `pipe`'s components) and its extra arguments, and say how to undo their changes.
            prepared = prepare_control(
                pipe,
                controls,
                control_image=control_image,
                ip_image=ip_image,
                guidance_scale=guidance_scale,  # IP-Adapter embeddings carry the unconditional half
                height=height,
                **kwargs,
            )
            stack.callback(prepared.cleanup)
            call, extra = prepared.pipeline, dict(prepared.call_kwargs)
        generator = torch.Generator().manual_seed(int(seed))
        return call(
            prompt,
            negative_prompt=negative_prompt,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            num_images_per_prompt=num_images,
            height=height,
            width=width,
            generator=generator,
            **extra,
        ).images
