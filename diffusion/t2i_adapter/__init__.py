"""T2I-Adapter: a small conv network whose multi-scale features are added to the frozen UNet's encoder.

Trained by `diffusion.train_control(..., method="t2i_adapter")`; sampled in diffusers'
`StableDiffusionAdapterPipeline` (`StableDiffusionXLAdapterPipeline` on an SDXL base); saved as a stock
`T2IAdapter` folder.
"""

from functools import partial

from diffusers import (
    MultiAdapter,
    StableDiffusionAdapterPipeline,
    StableDiffusionXLAdapterPipeline,
    T2IAdapter,
)

from studio.core import register_method

from ..artifacts import config_class_name
from ..control import ControlPipeline, ControlSpec, pretrained_loader, save_pretrained, train_control
from . import model
from .config import ADAPTER_TYPES, T2IAdapterConfig
from .model import adapter_residuals, build_t2i_adapter, residual_slots

register_method(
    T2IAdapterConfig,
    domain="diffusion",
    task="control",
    train=partial(train_control, method=T2IAdapterConfig.method),
    save=save_pretrained,
    load=pretrained_loader(T2IAdapter),
    spec=ControlSpec(
        recognize=lambda path: path.is_dir() and config_class_name(path) in ("T2IAdapter", "MultiAdapter"),
        loads_with="T2IAdapter.from_pretrained(folder)",
        summary="a small side network whose features join the UNet's encoder",
        build=model.build,
        residuals=adapter_residuals,
        scale_key="adapter_conditioning_scale",
        pipeline=ControlPipeline(
            {"sd": StableDiffusionAdapterPipeline, "sdxl": StableDiffusionXLAdapterPipeline},
            "adapter",
            MultiAdapter,
        ),
    ),
)

__all__ = ["ADAPTER_TYPES", "T2IAdapterConfig", "adapter_residuals", "build_t2i_adapter", "residual_slots"]
