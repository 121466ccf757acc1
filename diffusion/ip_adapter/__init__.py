"""IP-Adapter: decoupled cross-attention on image tokens projected from a CLIP image embedding.

Trained by `diffusion.train_control(..., method="ip_adapter")` on images alone (each image is its own
reference); sampled by loading it into the shared UNet with diffusers' `load_ip_adapter`; saved as one stock
`ip_adapter.safetensors`.
"""

from functools import partial

from studio.core import register_method

from ..control import ControlSpec, train_control
from . import model
from .config import IPAdapterConfig
from .model import drop_conditions, ip_residuals
from .weights import (
    WEIGHTS_NAME,
    initial_state_dict,
    install,
    ip_parameters,
    is_ip_adapter_file,
    read_ip_adapter,
    save_ip_adapter,
    uninstall,
)

register_method(
    IPAdapterConfig,
    domain="diffusion",
    task="control",
    train=partial(train_control, method=IPAdapterConfig.method),
    save=model.save,
    load=model.load,
    spec=ControlSpec(
        recognize=is_ip_adapter_file,
        loads_with="pipe.load_ip_adapter(folder, subfolder='', weight_name=file)",
        summary="an image prompt: a reference image instead of a condition map",
        reference=True,
        build=model.build,
        residuals=ip_residuals,
        scale_key="ip_adapter_scale",
        drop=drop_conditions,
        install=install,
        release=uninstall,
        call_kwargs=model.call_kwargs,
    ),
)

__all__ = [
    "WEIGHTS_NAME",
    "IPAdapterConfig",
    "drop_conditions",
    "initial_state_dict",
    "install",
    "ip_parameters",
    "ip_residuals",
    "is_ip_adapter_file",
    "read_ip_adapter",
    "save_ip_adapter",
    "uninstall",
]
