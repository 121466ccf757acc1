"""The plumbing every control method shares: the `ControlConfig` base, each method's `ControlSpec`, dataset
reading, the `train_control` loop, the training previews, the image encoder and sampling (`prepare`, which
`diffusion.generate` calls for control artifacts).

The methods themselves live in their own folders (`diffusion.controlnet`, `diffusion.t2i_adapter`,
`diffusion.ip_adapter`) and register with `studio.core.register_method(..., task="control", spec=ControlSpec(...))`.

Example:
    >>> import diffusion
    >>> art = diffusion.train_control(pipe, "data/pairs", method="controlnet", condition="canny", steps=5000)
"""

from .config import ControlConfig
from .image_encoder import ImageEncoder, load_image_encoder
from .sampling import prepare, release
from .spec import (
    BuiltControl,
    ControlPipeline,
    ControlSetup,
    ControlSpec,
    LoadedControl,
    control_method,
    control_methods,
    pretrained_loader,
    save_pretrained,
)
from .train import train_control

__all__ = [
    "BuiltControl",
    "ControlConfig",
    "ControlPipeline",
    "ControlSetup",
    "ControlSpec",
    "ImageEncoder",
    "LoadedControl",
    "control_method",
    "control_methods",
    "load_image_encoder",
    "prepare",
    "pretrained_loader",
    "release",
    "save_pretrained",
    "train_control",
]
