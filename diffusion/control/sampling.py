"""Sampling with control artifacts: the stock diffusers pipeline to call and the arguments it needs.

Condition-guided controls (ControlNet, T2I-Adapter) run in their method's stock pipeline for the base's
architecture (`StableDiffusionControlNetPipeline` on SD 1.x/2.x, `StableDiffusionXLControlNetPipeline` on SDXL;
several of one method joined by its multi wrapper), built from the base pipeline's own components, so Textual
Inversion tokens and SVDiff shifts loaded into it stay in effect. Controls that live in the UNet (IP-Adapter) are
installed into the shared UNet by their method and fed the embeddings of their reference images from the
shared image encoder. A raw photo given as control image goes through the extractor recorded in the artifact.
What differs between methods comes from each method's `ControlSpec`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline
from PIL import Image

from ..artifacts import ArtifactInfo, check_artifact, read_artifact
from ..conditions import extract_condition
from ..images import ImageInput, load_images, pipeline_resolution
from .image_encoder import ImageEncoder, load_image_encoder
from .spec import LoadedControl, control_methods, load_control, pipeline_class_for

TEXT_TO_IMAGE = {"sd": StableDiffusionPipeline, "sdxl": StableDiffusionXLPipeline}
"""The pipeline reference-guided controls alone sample in, by base architecture."""

PASSED_ON = ("guidance_scale", "height", "width")
"""Keyword arguments `prepare` reads and the caller passes to the pipeline call too."""


def consumed() -> tuple[str, ...]:
    """Keyword arguments `prepare` reads itself: `PASSED_ON`, `extract`, and every control method's scale
    argument (`ControlSpec.scale_key`)."""
    return (*PASSED_ON, "extract", *(m.spec.scale_key for m in control_methods()))


def condition_image(
    control: LoadedControl, image: ImageInput, size: int, extract: bool = True
) -> Image.Image:
    """Bring a control image to the sampling size, applying the control's extractor to a raw photo.

    Args:
        control: the control it is for.
        image: a path, PIL image or array: a photo, or a ready condition image.
        size: the output side (square, as in training).
        extract: apply the recorded extractor (False: `image` already is a condition image).

    Returns:
        An RGB `size × size` condition image.
    """
    (fitted,) = load_images([image], size)
    if extract and control.condition:
        fitted = extract_condition(fitted, control.condition, **control.condition_params)
    return fitted.convert("RGB")


def _per_control(value: Any, count: int, what: str) -> list[Any]:
    values = list(value) if isinstance(value, (list, tuple)) else [value] * count
    if len(values) != count:
        raise ValueError(f"got {len(values)} {what} for {count} control artifact(s); give one per artifact")
    return values


def _names(reference: bool) -> str:
    return " / ".join(m.name for m in control_methods() if m.spec.reference == reference)


def _one_kind(controls: list[LoadedControl]) -> None:
    kinds = sorted({c.kind for c in controls})
    if len(kinds) > 1:
        raise ValueError(f"{' and '.join(kinds)} artifacts cannot be combined in one call; use one kind")


def build_call(
    pipe: DiffusionPipeline,
    controls: Sequence[LoadedControl],
    control_image: Any = None,
    ip_image: Any = None,
    *,
    extract: bool = True,
    **kw: Any,
) -> tuple[DiffusionPipeline, dict[str, Any]]:
    """The pipeline to call and its extra arguments for loaded controls (see `prepare`).

    Controls that live in the UNet must already be installed there (`prepare` installs them; training
    previews sample the one being trained).

    Args:
        pipe: the base pipeline.
        controls: the loaded controls.
        control_image: image(s) for the condition-guided controls (one, or one per such control, in order).
        ip_image: reference image(s) for the reference-guided controls (one, or one per such control).
        extract: apply each control's recorded extractor to its control image.
        **kw: the call's other arguments; `guidance_scale`, `height` and the methods' scale arguments
            (`controlnet_conditioning_scale`, `adapter_conditioning_scale`, `ip_adapter_scale`) are read here.

    Returns:
        `(pipeline, extra_call_kwargs)`.
    """
    spatial = [c for c in controls if not c.spec.reference]
    references = [c for c in controls if c.spec.reference]
    _one_kind(spatial)
    _one_kind(references)
    if control_image is not None and not spatial:
        raise ValueError(f"control_image was given but no {_names(reference=False)} artifact uses it")
    if ip_image is not None and not references:
        raise ValueError(f"ip_image was given but no {_names(reference=True)} artifact uses it")
    target, extra = pipe, {}
    if spatial:
        target, extra = _condition_call(pipe, spatial, control_image, extract, kw)
    elif references:
        target = _rebuild(pipeline_class_for(pipe, TEXT_TO_IMAGE), pipe)
    if references:
        extra.update(_reference_call(target, references, ip_image, kw))
    return target, extra


def _scales(controls: list[LoadedControl], kw: dict[str, Any]) -> list[float]:
    """One strength per control: the call's override (`ControlSpec.scale_key`) or each recorded default."""
    given = kw.get(controls[0].spec.scale_key, [c.scale for c in controls])
    return _per_control(given, len(controls), "scales")


def _condition_call(
    pipe: DiffusionPipeline,
    controls: list[LoadedControl],
    control_image: Any,
    extract: bool,
    kw: dict[str, Any],
) -> tuple[DiffusionPipeline, dict[str, Any]]:
    """The method's stock pipeline on `pipe`'s components and its call arguments, for condition-guided controls
    of one method."""
    if control_image is None:
        raise ValueError(f"a {controls[0].kind} artifact needs control_image= (a condition image or a photo)")
    spec = controls[0].spec
    size = kw.get("height") or pipeline_resolution(pipe)
    given = _per_control(control_image, len(controls), "control images")
    images = [condition_image(c, image, size, extract) for c, image in zip(controls, given, strict=True)]
    scales, modules = _scales(controls, kw), [c.module for c in controls]
    single = len(controls) == 1
    module = modules[0] if single else spec.pipeline.combine(modules)
    target = _rebuild(spec.pipeline.cls_for(pipe), pipe, **{spec.pipeline.module_key: module})
    return target, {spec.scale_key: scales[0] if single else scales, "image": images[0] if single else images}


def _reference_call(
    target: DiffusionPipeline, controls: list[LoadedControl], ip_image: Any, kw: dict[str, Any]
) -> dict[str, Any]:
    """The call arguments for reference-guided controls of one method (`ControlSpec.call_kwargs`)."""
    if ip_image is None:
        raise ValueError(f"a {controls[0].kind} artifact needs ip_image= (the reference image)")
    pictures = [
        load_images([image], pipeline_resolution(target))[0]  # as the training images were
        for image in _per_control(ip_image, len(controls), "ip images")
    ]
    guidance = kw.get("guidance_scale", 7.5)
    return controls[0].spec.call_kwargs(target, controls, pictures, _scales(controls, kw), guidance)


def _rebuild(cls: type, pipe: DiffusionPipeline, **modules: Any) -> DiffusionPipeline:
    """A `cls` pipeline on `pipe`'s own components (shared, not copied) plus `modules`, with `pipe`'s settings
    (e.g. SDXL's `force_zeros_for_empty_prompt`)."""
    accepted = inspect.signature(cls.__init__).parameters
    components = {k: v for k, v in pipe.components.items() if k in accepted and k not in modules}
    settings = {k: v for k, v in pipe.config.items() if k in accepted and k not in pipe.components}
    if "requires_safety_checker" in accepted:
        settings["requires_safety_checker"] = False
    target = cls(**components, **settings, **modules)
    target.set_progress_bar_config(**getattr(pipe, "_progress_bar_config", {}))
    return target


@dataclass
class PreparedCall:
    """What `prepare` hands to the sampler.

    Args:
        pipeline: the pipeline to call (the base one, or a control pipeline sharing its components).
        call_kwargs: the extra arguments for that call.
        cleanup: undoes what `prepare` changed in the shared UNet (IP-Adapters); call it after sampling.
    """

    pipeline: DiffusionPipeline
    call_kwargs: dict[str, Any]
    cleanup: Callable[[], None]


def prepare(
    pipe: DiffusionPipeline,
    control_adapters: Sequence[Any],
    control_image: Any = None,
    ip_image: Any = None,
    **kw: Any,
) -> PreparedCall:
    """The pipeline to call for a set of control artifacts, the extra arguments for that call, and a cleanup.

    Controls that live in the UNet (IP-Adapters) are installed into the shared UNet here and taken out by
    the cleanup; each distinct image encoder the reference-guided controls name is loaded once.

    Args:
        pipe: the base pipeline (with any personalization already applied).
        control_adapters: artifact paths (read and checked here: kind, base model) or `ArtifactInfo`s already
            checked by the caller (as `diffusion.generate` passes them).
        control_image: the control image for the ControlNets / T2I-Adapters (one, or one per artifact): a
            condition image or a raw photo (the artifact's extractor is applied unless `extract=False`).
        ip_image: the reference image for the IP-Adapters.
        **kw: read here: `guidance_scale` and `height` (as the call will use them), scale overrides
            (`controlnet_conditioning_scale`, `adapter_conditioning_scale`, `ip_adapter_scale`), `extract`
            (False: control images are condition images already) and `check_base_model`; anything else is
            returned in the call's arguments.

    Returns:
        The `PreparedCall`; call its `cleanup()` after sampling, also when sampling fails.

    Raises:
        ValueError: for an artifact of another kind or base model, a missing control/reference image,
            controls of two condition-guided methods (ControlNets mixed with T2I-Adapters), or a wrong number of
            images or scales.
    """
    check = kw.pop("check_base_model", True)
    base = getattr(pipe, "base_model_id", None) if check else None
    infos = [
        a if isinstance(a, ArtifactInfo) else check_artifact(read_artifact(a), base_model=base)
        for a in control_adapters
    ]
    for info in infos:
        if not info.is_control:
            raise ValueError(f"{info.path} is a {info.kind} artifact; expected a control artifact")
    controls = [load_control(info, pipe.unet.device, pipe.unet.dtype) for info in infos]
    encoders: dict[str, ImageEncoder] = {}
    for control in controls:
        spec = control.image_encoder
        if control.spec.reference and not isinstance(spec, ImageEncoder):
            key = str(spec)  # None (the default tower) included
            if key not in encoders:
                encoders[key] = load_image_encoder(spec, device=pipe.unet.device)
            control.image_encoder = encoders[key]
    installed = [c for c in controls if c.spec.install is not None]
    try:
        _one_kind(installed)
        if installed:
            installed[0].spec.install(pipe, [c.module for c in installed])
        target, extra = build_call(pipe, controls, control_image, ip_image, **kw)
    except BaseException:
        release(pipe)
        raise
    passthrough = {k: v for k, v in kw.items() if k not in consumed()}
    cleanup = (lambda: release(pipe)) if installed else (lambda: None)
    return PreparedCall(target, {**passthrough, **extra}, cleanup)


def release(pipe: DiffusionPipeline) -> None:
    """Take out of `pipe.unet` the controls that `prepare` installed there (a no-op when there are none).

    Args:
        pipe: the base pipeline.
    """
    for method in control_methods():
        if method.spec.release is not None:
            method.spec.release(pipe)
