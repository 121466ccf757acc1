"""Diffusion: Stable-Diffusion-format pipelines and their personalization.

Example:
    >>> import diffusion
    >>> pipe = diffusion.load_pipeline("studio/shapes-sd")
    >>> art = diffusion.personalize(pipe, "my_images/", method="textual_inversion", token="<my-shape>", steps=300)
    >>> images = diffusion.generate(pipe, "a <my-shape>", adapters=[art], seed=0)
    >>> ctl = diffusion.train_control(pipe, "pairs/", method="controlnet", condition="canny", steps=500)
    >>> images = diffusion.generate(pipe, "a <my-shape>", adapters=[art, ctl], control_image="photo.png")
"""

from .artifacts import ArtifactInfo, ArtifactSpec, artifact_kinds, artifact_spec, read_artifact
from .control import train_control
from .controlnet import ControlNetConfig
from .custom_diffusion import CustomDiffusionConfig
from .difffit import DiffFitConfig
from .export import export_merged_components, export_merged_unet
from .generate import SCHEDULERS, generate
from .images import load_images
from .ip_adapter import IPAdapterConfig
from .lora import DiffusionLoRAConfig
from .personalize import personalize
from .pipeline import load_pipeline
from .svdiff import SVDiffConfig
from .t2i_adapter import T2IAdapterConfig
from .textual_inversion import TextualInversionConfig

__all__ = [
    "SCHEDULERS",
    "ArtifactInfo",
    "ArtifactSpec",
    "ControlNetConfig",
    "CustomDiffusionConfig",
    "DiffFitConfig",
    "DiffusionLoRAConfig",
    "IPAdapterConfig",
    "SVDiffConfig",
    "T2IAdapterConfig",
    "TextualInversionConfig",
    "artifact_kinds",
    "artifact_spec",
    "export_merged_components",
    "export_merged_unet",
    "generate",
    "load_images",
    "load_pipeline",
    "personalize",
    "read_artifact",
    "train_control",
]
