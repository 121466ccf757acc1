"""Creating timm backbones (random, hub or local weights) and their data transforms."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import create_transform, resolve_model_data_config
from torch import nn

from studio.core import classifier_name, is_asset_name, read_tensors

from .assets import create_asset_model

CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a local checkpoint without unpickling code: safetensors, or `torch.load(weights_only=True)`.

    Common wrappers (`{"state_dict": ...}`, `{"model": ...}`, a DDP `module.` prefix) are unwrapped.
    """
    path = Path(path)
    if path.suffix not in CHECKPOINT_SUFFIXES:
        raise ValueError(f"{path}: expected a {'/'.join(CHECKPOINT_SUFFIXES)} checkpoint")
    if path.suffix == ".safetensors":
        state = read_tensors(path, "checkpoint")
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(
                f"{path} is not a plain tensor checkpoint (refusing to unpickle objects): {err}"
            ) from None
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def create_model(
    name: str, num_classes: int | None = None, pretrained: bool | str | os.PathLike = False, **kwargs: Any
) -> nn.Module:
    """Create a timm model with a fresh head for `num_classes`.

    Args:
        name: a timm architecture, e.g. `"vit_base_patch16_224"` (or `"hf-hub:..."` with `pretrained=True`),
            or a bundled reference model, e.g. `"studio/shapes-vit"` (offline; see `vision.assets`).
        num_classes: classes of the new head; None keeps the architecture's (or the local file's) head.
        pretrained: False for random weights, True for timm's pretrained weights (downloaded once, then
            cached), or the path of a local checkpoint (`.safetensors`, or a tensor-only `.pth`/`.bin`).
        **kwargs: passed to `timm.create_model` (e.g. `img_size=`, `patch_size=`, `drop_path_rate=`).

    Returns:
        The model, with `model.base_model_id` set to `name` (recorded in saved adapters).
    """
    head_kwargs = {} if num_classes is None else {"num_classes": num_classes}
    if is_asset_name(name):
        if not isinstance(pretrained, bool):
            raise ValueError(f"{name!r} is a bundled model: pass pretrained=True or False, not a file")
        model = create_asset_model(name, num_classes, pretrained, **kwargs)
    elif isinstance(pretrained, (str, os.PathLike)) and not isinstance(pretrained, bool):
        model = _from_local_file(name, Path(pretrained), num_classes, kwargs)
    else:
        try:
            model = timm.create_model(name, pretrained=bool(pretrained), **head_kwargs, **kwargs)
        except RuntimeError as err:
            if "Unknown model" in str(err):
                raise ValueError(f"unknown timm model {name!r}; see timm.list_models()") from None
            raise
        except OSError as err:
            raise OSError(
                f"could not fetch pretrained weights for {name!r} ({err}); offline, pass the path of a "
                "local checkpoint as pretrained='weights.safetensors'"
            ) from None
    model.base_model_id = name
    return model


def _from_local_file(name: str, path: Path, num_classes: int | None, kwargs: dict[str, Any]) -> nn.Module:
    if not path.is_file():
        raise FileNotFoundError(f"pretrained checkpoint {path} does not exist")
    state = read_state_dict(path)
    model = timm.create_model(name, pretrained=False, **kwargs)
    default_classes, head = model.num_classes, classifier_name(model)
    file_classes = state[f"{head}.weight"].shape[0] if head and f"{head}.weight" in state else 0
    model.reset_classifier(file_classes)  # match the file's head (none = a backbone-only checkpoint)
    expected = model.state_dict()
    for key, tensor in state.items():
        if key in expected and expected[key].shape != tensor.shape:
            raise ValueError(
                f"{path} does not fit {name!r}: tensor {key!r} has shape {tuple(tensor.shape)}, "
                f"the model expects {tuple(expected[key].shape)}"
            )
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        key, where = (missing[0], "missing from") if missing else (unexpected[0], "unexpected in")
        raise ValueError(f"{path} does not fit {name!r}: tensor {key!r} is {where} the checkpoint")
    wanted = num_classes if num_classes is not None else (file_classes or default_classes)
    if wanted != model.num_classes:
        model.reset_classifier(wanted)
    return model


def data_config(model: nn.Module) -> dict[str, Any]:
    """timm's data config for `model` (mean, std, interpolation), with the input size the model was built for."""
    config = resolve_model_data_config(model)
    img_size = getattr(getattr(model, "patch_embed", None), "img_size", None)
    if img_size is not None:
        config["input_size"] = (3, *img_size)
    return config


def image_transform(model: nn.Module, augment: bool = False) -> Any:
    """The input transform for `model`: a plain resize to the input size, or timm's training augmentation.

    Args:
        model: the timm model.
        augment: random-resized crop, flip and colour jitter (timm's training recipe); off by default, as in
            VPT's VTAB protocol, which makes training deterministic for exact resume.
    """
    config = data_config(model)
    if augment:
        return create_transform(**config, is_training=True)
    return create_transform(**{**config, "crop_pct": 1.0}, is_training=False)
