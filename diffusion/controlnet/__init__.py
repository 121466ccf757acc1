"""ControlNet: a trainable copy of the UNet encoder joined to the frozen UNet by zero-initialised convs.

Trained by `diffusion.train_control(..., method="controlnet")`; sampled in diffusers'
`StableDiffusionControlNetPipeline` (`StableDiffusionXLControlNetPipeline` on an SDXL base); saved as a stock
`ControlNetModel` folder.
"""

from functools import partial

from diffusers import (
    ControlNetModel,
    MultiControlNetModel,
    StableDiffusionControlNetPipeline,
    StableDiffusionXLControlNetPipeline,
)

from studio.core import register_method

from ..artifacts import config_class_name
from ..control import ControlPipeline, ControlSpec, pretrained_loader, save_pretrained, train_control
from . import model
from .config import ControlNetConfig
from .model import build_controlnet, controlnet_residuals, embedding_channels

register_method(
    ControlNetConfig,
    domain="diffusion",
    task="control",
    train=partial(train_control, method=ControlNetConfig.method),
    save=save_pretrained,
    load=pretrained_loader(ControlNetModel),
    spec=ControlSpec(
        recognize=lambda path: path.is_dir() and config_class_name(path) == ControlNetModel.__name__,
        loads_with="ControlNetModel.from_pretrained(folder)",
        summary="a trainable copy of the UNet encoder (largest, strongest)",
        build=model.build,
        residuals=controlnet_residuals,
        scale_key="controlnet_conditioning_scale",
        pipeline=ControlPipeline(
            {"sd": StableDiffusionControlNetPipeline, "sdxl": StableDiffusionXLControlNetPipeline},
            "controlnet",
            MultiControlNetModel,
        ),
    ),
)

__all__ = ["ControlNetConfig", "build_controlnet", "controlnet_residuals", "embedding_channels"]
