"""Sampling with control artifacts: the stock diffusers pipeline to call and the arguments it needs.

ControlNets run in `StableDiffusionControlNetPipeline` (several in a `MultiControlNetModel`), T2I-Adapters in
`StableDiffusionAdapterPipeline` (several in a `MultiAdapter`), both built from the base pipeline's own
components, so Textual Inversion tokens and SVDiff shifts loaded into it stay in effect. IP-Adapters are
loaded into the shared UNet with the stock `load_ip_adapter` and fed `ip_adapter_image_embeds` from our
image encoder. A raw photo given as control image goes through the extractor recorded in the artifact.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers import (
    ControlNetModel,
    MultiAdapter,
    MultiControlNetModel,
    StableDiffusionAdapterPipeline,
    StableDiffusionControlNetPipeline,
    StableDiffusionPipeline,
    T2IAdapter,
)
from PIL import Image

from ..artifacts import ArtifactInfo, check_artifact, read_artifact
from ..conditions import extract_condition
from ..images import ImageInput, load_images, pipeline_resolution
from . import ip_adapter
from .image_encoder import ImageEncoder, load_image_encoder

CONSUMED = (
    "guidance_scale",
    "height",
    "width",
    "extract",
    "controlnet_conditioning_scale",
    "adapter_conditioning_scale",
    "ip_adapter_scale",
)
"""Keyword arguments `prepare` reads itself (the caller passes the first three to the pipeline call too)."""


SPATIAL_PIPELINES = {
    "controlnet": (
        StableDiffusionControlNetPipeline,
        "controlnet",
        "controlnet_conditioning_scale",
        MultiControlNetModel,
    ),
    "t2i_adapter": (StableDiffusionAdapterPipeline, "adapter", "adapter_conditioning_scale", MultiAdapter),
}
"""Per spatial control kind: the stock pipeline, its module argument, its scale argument, the multi wrapper."""


@dataclass
class LoadedControl:
    """One control ready for sampling.

    Args:
        kind: `"controlnet"`, `"t2i_adapter"` or `"ip_adapter"`.
        module: the ControlNet or T2I-Adapter; for an IP-Adapter its nested state dict, or None when it is
            already installed in the UNet (previews during training).
        scale: default strength (conditioning scale, adapter weight or IP-Adapter scale).
        condition: the extractor that turns a photo into this control's condition (None: use images as given).
        condition_params: the extractor's parameters.
        image_encoder: the IP-Adapter's image encoder spec as recorded; `prepare` replaces it by the loaded
            `ImageEncoder`, which `build_call` needs.
    """

    kind: str
    module: Any
    scale: float = 1.0
    condition: str | None = None
    condition_params: dict[str, Any] = field(default_factory=dict)
    image_encoder: Any = None


def load_control(info: ArtifactInfo, device: torch.device, dtype: torch.dtype) -> LoadedControl:
    """Load a control artifact with the stock diffusers loaders.

    Args:
        info: the artifact (`diffusion.artifacts.read_artifact`).
        device: the pipeline's device.
        dtype: the pipeline's UNet dtype.

    Returns:
        The loaded control with the scale, extractor and image encoder its record names.
    """
    hyper, extra = info.hyperparameters, info.extra
    if info.kind == "controlnet":
        module = ControlNetModel.from_pretrained(info.path, local_files_only=True, torch_dtype=dtype).to(
            device
        )
    elif info.kind == "t2i_adapter":
        module = T2IAdapter.from_pretrained(info.path, local_files_only=True, torch_dtype=dtype).to(device)
    elif info.kind != "ip_adapter":
        raise ValueError(
            f"{info.path} is a {info.kind} artifact, not a control (ControlNet, T2I-Adapter, IP-Adapter)"
        )
    else:
        folder = info.path.parent if info.path.is_file() else info.path
        module = ip_adapter.read_ip_adapter(folder)
    return LoadedControl(
        kind=info.kind,
        module=module,
        scale=float(hyper.get("scale", 1.0)),
        condition=extra.get("condition"),
        condition_params=dict(extra.get("condition_params") or {}),
        image_encoder=extra.get("image_encoder"),
    )


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


def build_call(
    pipe: StableDiffusionPipeline,
    controls: Sequence[LoadedControl],
    control_image: Any = None,
    ip_image: Any = None,
    *,
    extract: bool = True,
    **kw: Any,
) -> tuple[StableDiffusionPipeline, dict[str, Any]]:
    """The pipeline to call and its extra arguments for loaded controls (see `prepare`).

    IP-Adapters must already be installed in `pipe.unet` (`prepare` installs them; training previews sample
    the one being trained).

    Args:
        pipe: the base pipeline.
        controls: the loaded controls.
        control_image: image(s) for the ControlNets / T2I-Adapters (one, or one per such control, in order).
        ip_image: reference image(s) for the IP-Adapters (one, or one per IP-Adapter).
        extract: apply each control's recorded extractor to its control image.
        **kw: the call's other arguments; `guidance_scale`, `height`, `controlnet_conditioning_scale`,
            `adapter_conditioning_scale` and `ip_adapter_scale` are read here.

    Returns:
        `(pipeline, extra_call_kwargs)`.
    """
    spatial = [c for c in controls if c.kind in ("controlnet", "t2i_adapter")]
    ips = [c for c in controls if c.kind == "ip_adapter"]
    if len({c.kind for c in spatial}) > 1:
        raise ValueError("ControlNet and T2I-Adapter artifacts cannot be combined in one call; use one kind")
    if ips and spatial and spatial[0].kind == "t2i_adapter":
        raise ValueError(
            "diffusers' StableDiffusionAdapterPipeline has no IP-Adapter support; combine an IP-Adapter with "
            "ControlNets (or with TI/SVDiff) instead"
        )
    if control_image is not None and not spatial:
        raise ValueError("control_image was given but no ControlNet / T2I-Adapter artifact uses it")
    if ip_image is not None and not ips:
        raise ValueError("ip_image was given but no IP-Adapter artifact uses it")
    extra: dict[str, Any] = {}
    target = pipe
    if spatial:
        if control_image is None:
            raise ValueError(
                f"a {spatial[0].kind} artifact needs control_image= (a condition image or a photo)"
            )
        size = kw.get("height") or pipeline_resolution(pipe)
        images = [
            condition_image(c, image, size, extract)
            for c, image in zip(
                spatial, _per_control(control_image, len(spatial), "control images"), strict=True
            )
        ]
        pipeline_cls, module_key, scale_key, combine = SPATIAL_PIPELINES[spatial[0].kind]
        scales = _per_control(kw.get(scale_key, [c.scale for c in spatial]), len(spatial), "scales")
        modules = [c.module for c in spatial]
        module = modules[0] if len(modules) == 1 else combine(modules)
        target = _rebuild(pipeline_cls, pipe, **{module_key: module})
        extra[scale_key] = scales[0] if len(modules) == 1 else scales
        extra["image"] = images[0] if len(images) == 1 else images
    elif ips:
        target = _rebuild(StableDiffusionPipeline, pipe)
    if ips:
        extra["ip_adapter_image_embeds"] = _ip_embeds(target, ips, ip_image, kw)
    return target, extra


def _rebuild(cls: type, pipe: StableDiffusionPipeline, **modules: Any) -> StableDiffusionPipeline:
    """A `cls` pipeline on `pipe`'s own components (shared, not copied) plus `modules`."""
    accepted = inspect.signature(cls.__init__).parameters
    components = {k: v for k, v in pipe.components.items() if k in accepted and k not in modules}
    if "requires_safety_checker" in accepted:
        components["requires_safety_checker"] = False
    target = cls(**components, **modules)
    target.set_progress_bar_config(**getattr(pipe, "_progress_bar_config", {}))
    return target


def _ip_embeds(target, ips: list[LoadedControl], ip_image: Any, kw: dict) -> list[torch.Tensor]:
    if ip_image is None:
        raise ValueError("an ip_adapter artifact needs ip_image= (the reference image)")
    target.set_ip_adapter_scale(
        _per_control(kw.get("ip_adapter_scale", [c.scale for c in ips]), len(ips), "scales")
    )
    guided = kw.get("guidance_scale", 7.5) > 1 and target.unet.config.time_cond_proj_dim is None
    embeds = []
    for control, image in zip(ips, _per_control(ip_image, len(ips), "ip images"), strict=True):
        encoder = control.image_encoder  # loaded by `prepare` (or the trainer's own, for previews)
        (picture,) = load_images([image], pipeline_resolution(target))  # as the training images were
        embedding = encoder([picture])[:, None].to(target.unet.dtype)  # [1 image, 1, D]
        # The stock pipeline's unconditional image input is a zero embedding, as dropped in training.
        embeds.append(torch.cat([torch.zeros_like(embedding), embedding]) if guided else embedding)
    return embeds


@dataclass
class PreparedCall:
    """What `prepare` hands to the sampler.

    Args:
        pipeline: the pipeline to call (the base one, or a control pipeline sharing its components).
        call_kwargs: the extra arguments for that call.
        cleanup: undoes what `prepare` changed in the shared UNet (IP-Adapters); call it after sampling.
    """

    pipeline: StableDiffusionPipeline
    call_kwargs: dict[str, Any]
    cleanup: Callable[[], None]


def prepare(
    pipe: StableDiffusionPipeline,
    control_adapters: Sequence[Any],
    control_image: Any = None,
    ip_image: Any = None,
    **kw: Any,
) -> PreparedCall:
    """The pipeline to call for a set of control artifacts, the extra arguments for that call, and a cleanup.

    IP-Adapters are loaded into the shared UNet here and taken out by the cleanup; each distinct image
    encoder they name is loaded once.

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
            ControlNets mixed with T2I-Adapters, or a wrong number of images or scales.
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
    ips = [c for c in controls if c.kind == "ip_adapter"]
    encoders: dict[str, ImageEncoder] = {}
    for control in ips:
        spec = control.image_encoder
        if not isinstance(spec, ImageEncoder):
            key = str(spec)  # None (the default tower) included
            if key not in encoders:
                encoders[key] = load_image_encoder(spec, device=pipe.unet.device)
            control.image_encoder = encoders[key]
    if ips:
        ip_adapter.install(pipe, [c.module for c in ips])
    try:
        target, extra = build_call(pipe, controls, control_image, ip_image, **kw)
    except BaseException:
        release(pipe)
        raise
    passthrough = {k: v for k, v in kw.items() if k not in CONSUMED}
    return PreparedCall(target, {**passthrough, **extra}, (lambda: release(pipe)) if ips else (lambda: None))


def release(pipe: StableDiffusionPipeline) -> None:
    """Remove IP-Adapters that `prepare` loaded into `pipe.unet` (a no-op when there are none).

    Args:
        pipe: the base pipeline.
    """
    ip_adapter.uninstall(pipe)
