"""A toy control method, registered the way a new control method is added: one config class and one
`register_method` call, nothing else in the product. It is ControlNet under another name with an option of
its own, so it trains and samples for real.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

from diffusion.control import train_control
from diffusion.controlnet import ControlNetConfig
from studio.core import get_method, hfield, register_method

NAME = "toy_control"


@dataclass
class ToyControlConfig(ControlNetConfig):
    """The toy method's config: ControlNet's fields plus `toy_option`."""

    method = NAME

    toy_option: int = hfield(1, "An option only the toy method has.")


def register_toy_control() -> str:
    """Register the toy method (call it from a test that uses the `scratch_registry` fixture).

    Returns:
        Its name.
    """
    controlnet = get_method("controlnet", "diffusion")
    register_method(
        ToyControlConfig,
        domain="diffusion",
        task="control",
        train=partial(train_control, method=NAME),
        save=controlnet.save,
        load=controlnet.load,
        spec=dataclasses.replace(controlnet.spec, summary="a toy: ControlNet under another name"),
    )
    return NAME
