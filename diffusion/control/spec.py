"""What the shared control plumbing asks of each control method: its `ControlSpec`, registered as the
method's `spec`, and the typed records that pass between the plumbing and the method.

The trainer (`train_control`), the sampler (`prepare`), the training previews and the studio read a method's
behaviour from here, so none of them names a method.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline
from PIL import Image
from torch import nn

from studio.core import Method, get_method, list_methods

from ..architecture import architecture_of
from ..artifacts import ArtifactInfo, ArtifactSpec
from .image_encoder import ImageEncoder

DOMAIN, TASK = "diffusion", "control"


@dataclass
class ControlSetup:
    """What building a control for training may use besides the pipeline and the config.

    Args:
        images: the training images (RGB, square), in dataset order.
        flip: whether the run also trains on their mirror images (after the originals, in the same order).
        image_encoder: the image tower asked for (`load_image_encoder`'s spec); None: the default.
    """

    images: list[Image.Image]
    flip: bool
    image_encoder: Any = None


@dataclass
class BuiltControl:
    """A freshly built control, ready to train.

    Args:
        module: the network trained beside the frozen UNet (ControlNet, T2I-Adapter); None when the
            control's layers live inside the UNet (IP-Adapter).
        image_encoder: the image tower that embeds reference images, for reference-guided controls.
        image_embeds: the embeddings of the training images `[len(latent cache), E]` (mirror images included),
            for reference-guided controls.
    """

    module: nn.Module | None
    image_encoder: ImageEncoder | None = None
    image_embeds: torch.Tensor | None = None


@dataclass
class LoadedControl:
    """One control ready for sampling.

    Args:
        kind: the control method's name (e.g. `"controlnet"`).
        module: what its `load` returned (a ControlNet, a T2I-Adapter, an IP-Adapter's state dict), or None
            when it is already installed in the UNet (previews during training).
        scale: default strength (conditioning scale, adapter weight or IP-Adapter scale).
        condition: the extractor that turns a photo into this control's condition (None: use images as given).
        condition_params: the extractor's parameters.
        image_encoder: a reference-guided control's image encoder, as recorded (a spec string or None);
            `prepare` replaces it by the loaded `ImageEncoder`.
    """

    kind: str
    module: Any
    scale: float = 1.0
    condition: str | None = None
    condition_params: dict[str, Any] = field(default_factory=dict)
    image_encoder: Any = None

    @property
    def spec(self) -> ControlSpec:
        """The registered `ControlSpec` of this control's method."""
        return get_method(self.kind, DOMAIN).spec


@dataclass(frozen=True)
class ControlPipeline:
    """The stock pipelines a condition-guided control samples in, one per base architecture.

    Args:
        classes: the pipeline class for each architecture it supports, by `Architecture.name` (e.g.
            `{"sd": StableDiffusionControlNetPipeline, "sdxl": StableDiffusionXLControlNetPipeline}`), built on
            the base pipeline's own components.
        module_key: the constructor argument that takes the control (e.g. `"controlnet"`).
        combine: `modules -> module` joining several controls of the method (e.g. `MultiControlNetModel`).
    """

    classes: Mapping[str, type]
    module_key: str
    combine: Callable[[list[nn.Module]], nn.Module]

    def cls_for(self, pipe) -> type:
        """The pipeline class for `pipe`'s architecture (see `pipeline_class_for`)."""
        return pipeline_class_for(pipe, self.classes)


def pipeline_class_for(pipe, classes: Mapping[str, type]) -> type:
    """The class of `classes` for `pipe`'s architecture (`diffusion.architecture.architecture_of`): the one place
    where sampling tells an SD pipeline from an SDXL one.

    Args:
        pipe: the base pipeline.
        classes: pipeline classes by `Architecture.name`.

    Returns:
        The class.

    Raises:
        ValueError: `classes` has none for this architecture.
    """
    name = architecture_of(pipe).name
    if name not in classes:
        raise ValueError(
            f"no pipeline for a {name} base among {', '.join(c.__name__ for c in classes.values())}"
        )
    return classes[name]


@dataclass(frozen=True, kw_only=True)
class ControlSpec(ArtifactSpec):
    """How the shared control plumbing trains and samples one control method (the method's registered `spec`).

    Args:
        summary: one line on what the method is, shown beside the studio's method choice.
        reference: the method is guided by a reference image, embedded by the shared image encoder
            (IP-Adapter); False: by a condition image (ControlNet, T2I-Adapter), derived from each training
            image by an extractor or read from the dataset.
        build: `(pipe, config, setup) -> BuiltControl`, a fresh control for training (one that lives in the
            UNet is installed into `pipe.unet` here and taken out by `release`).
        residuals: `(module, noisy, timesteps, text, condition, image_embeds) -> dict`: the keyword arguments
            that apply the control to a `UNet2DConditionModel` call; `text` is the call's text keyword
            arguments (`Architecture.unet_kwargs`), which the result may extend (e.g. `added_cond_kwargs`).
        scale_key: the sampling call's argument that overrides the control's strength (e.g.
            `"controlnet_conditioning_scale"`).
        drop: `(text, image_embeds, empty_text, config) -> (text, image_embeds)`, randomly dropping the
            training inputs per sample (`text`, `empty_text`: `Conditioning`s), so guidance has an unconditional
            prediction; None: nothing dropped.
        pipeline: for condition-guided methods, the stock pipelines they sample in.
        install: `(pipe, modules)`: puts loaded controls that live in the UNet into `pipe.unet` for sampling.
        release: `(pipe)`: takes them out again (a no-op when there are none).
        call_kwargs: for reference-guided methods, `(pipeline, controls, images, scales, guidance_scale) ->
            dict`: the sampling call's arguments for the reference images.
    """

    summary: str
    reference: bool = False
    build: Callable[[DiffusionPipeline, Any, ControlSetup], BuiltControl]
    residuals: Callable[..., dict[str, Any]]
    scale_key: str
    drop: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None
    pipeline: ControlPipeline | None = None
    install: Callable[[DiffusionPipeline, list[Any]], None] | None = None
    release: Callable[[DiffusionPipeline], None] | None = None
    call_kwargs: Callable[..., dict[str, Any]] | None = None


def control_methods() -> list[Method]:
    """Every registered control method (`task="control"` in the diffusion domain), sorted by name."""
    return list_methods(DOMAIN, TASK)


def control_method(name: str) -> Method:
    """The registered control method `name`.

    Raises:
        ValueError: an unknown name or one that is not a control method (the message lists the known ones).
    """
    found = {m.name: m for m in control_methods()}
    if name not in found:
        raise ValueError(f"unknown control method {name!r}; choose one of {sorted(found)}")
    return found[name]


def load_control(info: ArtifactInfo, device: torch.device, dtype: torch.dtype) -> LoadedControl:
    """Load a control artifact with its method's `load` (the stock diffusers loaders).

    Args:
        info: the artifact (`diffusion.artifacts.read_artifact`).
        device: the pipeline's device.
        dtype: the pipeline's UNet dtype.

    Returns:
        The loaded control with the scale, extractor and image encoder its record names.

    Raises:
        ValueError: the artifact is not a control.
    """
    if not info.is_control:
        names = ", ".join(m.name for m in control_methods())
        raise ValueError(f"{info.path} is a {info.kind} artifact, not a control ({names})")
    hyper, extra = info.hyperparameters, info.extra
    return LoadedControl(
        kind=info.kind,
        module=control_method(info.kind).load(info, device, dtype),
        scale=float(hyper.get("scale", 1.0)),
        condition=extra.get("condition"),
        condition_params=dict(extra.get("condition_params") or {}),
        image_encoder=extra.get("image_encoder"),
    )


def save_pretrained(
    pipe: DiffusionPipeline, control: BuiltControl, folder: Path, record: dict[str, Any]
) -> None:
    """Write a trained control network as a stock `save_pretrained` folder (config.json +
    diffusion_pytorch_model.safetensors): the registered `save` of ControlNet and T2I-Adapter.

    Args:
        pipe: the base pipeline (unused: the network is separate from it).
        control: the trained control.
        folder: the artifact folder.
        record: the artifact record (the trainer writes it beside the weights).
    """
    control.module.save_pretrained(folder, safe_serialization=True)


def pretrained_loader(cls: type) -> Callable[[ArtifactInfo, torch.device, torch.dtype], nn.Module]:
    """The registered `load` of a control saved by `save_pretrained`: `cls.from_pretrained` on the artifact
    folder, on the pipeline's device in its dtype.

    Args:
        cls: the diffusers model class (e.g. `ControlNetModel`).
    """

    def load(info: ArtifactInfo, device: torch.device, dtype: torch.dtype) -> nn.Module:
        return cls.from_pretrained(info.path, local_files_only=True, torch_dtype=dtype).to(device)

    return load
