"""Loading the bundled reference classifiers (`studio/<name>`, e.g. `studio/shapes-vit`) offline.

An asset folder holds `config.json` (timm architecture, its kwargs, class names, data config) and
`model.safetensors` (possibly fp16), as written by the recipes in `assets/recipes/`.
"""

from __future__ import annotations

import json
from typing import Any

import timm
from safetensors.torch import load_file
from torch import nn

from studio.core import resolve_asset


def read_asset_config(name: str) -> dict[str, Any]:
    """The `config.json` of bundled model `name`.

    Args:
        name: e.g. `"studio/shapes-vit"`.

    Raises:
        FileNotFoundError: an unknown name (listing the bundled ones) or a folder without `config.json`.
    """
    path = resolve_asset(name) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"bundled model {name!r} has no {path.name} in {path.parent}")
    return json.loads(path.read_text())


def create_asset_model(
    name: str, num_classes: int | None = None, pretrained: bool = True, **kwargs: Any
) -> nn.Module:
    """Build a bundled reference classifier with its stored timm architecture and (optionally) weights.

    Args:
        name: e.g. `"studio/shapes-vit"`.
        num_classes: None keeps the trained head (and its class names in `model.pretrained_cfg["label_names"]`);
            another number resets the head through timm's `reset_classifier`.
        pretrained: load the bundled weights (cast to fp32); False gives random weights.
        **kwargs: passed to `timm.create_model` over the stored kwargs (e.g. `drop_path_rate=`).
    """
    config = read_asset_config(name)
    classes = config["classes"]
    model = timm.create_model(
        config["architecture"],
        pretrained=False,
        num_classes=len(classes),
        **{**config["model_kwargs"], **kwargs},
    )
    if pretrained:
        weights = resolve_asset(name) / "model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"bundled model {name!r} has no weights file {weights}")
        model.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()})
    # timm reads mean/std/input size from pretrained_cfg; label_names is where timm keeps class names.
    model.pretrained_cfg = {**model.pretrained_cfg, **config["data_config"], "label_names": classes}
    if num_classes is not None and num_classes != len(classes):
        model.reset_classifier(num_classes)
        del model.pretrained_cfg["label_names"]  # they name the old head's outputs
    return model
