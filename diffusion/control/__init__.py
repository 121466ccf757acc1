"""Control methods: ControlNet, T2I-Adapter and IP-Adapter, trained by `train_control` and sampled through
`sampling.prepare` (which `diffusion.generate` calls for control artifacts).

Example:
    >>> import diffusion
    >>> art = diffusion.train_control(pipe, "data/pairs", method="controlnet", condition="canny", steps=5000)
"""

from .controlnet import ControlNetConfig
from .image_encoder import ImageEncoder, load_image_encoder
from .ip_adapter import IPAdapterConfig
from .sampling import prepare, release
from .t2i_adapter import T2IAdapterConfig
from .train import CONFIGS, train_control

__all__ = [
    "CONFIGS",
    "ControlNetConfig",
    "IPAdapterConfig",
    "ImageEncoder",
    "T2IAdapterConfig",
    "load_image_encoder",
    "prepare",
    "release",
    "train_control",
]
