"""Creating open_clip models (bundled reference model, pretrained tags or local checkpoints) with their
image transform and tokenizer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import open_clip
import torch

from studio.core import (
    is_asset_name,
    join_clip_spec,
    open_clip_weights,
    reading,
    resolve_asset,
    split_clip_spec,
)

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"


def create_clip(
    model_name: str,
    pretrained: bool | str | os.PathLike | None = None,
    device: str | torch.device | None = None,
) -> tuple[torch.nn.Module, Any, Any]:
    """Create an open_clip model with its evaluation image transform and its tokenizer.

    Args:
        model_name: a bundled reference model (`"studio/shapes-clip"`, a folder of `assets/` in open_clip's
            `open_clip_config.json` + `open_clip_model.safetensors` format), or anything open_clip accepts:
            an architecture name (`"ViT-B-32"`, or `"ViT-B-32:laion2b_s34b_b79k"` with its pretrained tag:
            the spelling `diffusion`'s image encoders take too), `"hf-hub:org/repo"` or
            `"local-dir:/path/to/folder"`.
        pretrained: for a bundled model, None or True loads its trained weights, False gives random weights
            and a path loads that checkpoint into its architecture. For an open_clip architecture, None or
            False gives random weights, a string is a pretrained tag (`"laion2b_s34b_b79k"`, downloaded once,
            then cached) or the path of a local checkpoint (`.safetensors`, or tensors-only `.pt`/`.bin`).
            `hf-hub:`/`local-dir:` names bring their own weights; False skips them.
        device: where to put the model; defaults to the CPU.

    Returns:
        `(model, preprocess, tokenizer)`: the model in eval mode with `model.base_model_id` set (the name, or
        `"name:tag"` for a pretrained tag) and `model.base_pretrained` set to the `pretrained` argument as
        given (a path as a string), which together recreate the base model; the image transform for
        evaluation (PIL image -> tensor); the tokenizer (list of strings -> token ids).

    Raises:
        FileNotFoundError: for an unknown `studio/...` name, a bundled model without weights or a missing
            checkpoint file.
        ValueError: for an unknown architecture or `pretrained=True` with an open_clip architecture.
        OSError: when a pretrained tag cannot be downloaded (e.g. offline).

    Example:
        >>> model, preprocess, tokenizer = create_clip("studio/shapes-clip")
        >>> text = model.encode_text(tokenizer(["a red circle"]), normalize=True)
    """
    device = torch.device(device or "cpu")
    if isinstance(pretrained, os.PathLike):
        pretrained = str(pretrained)
    if is_asset_name(model_name):
        model, preprocess, tokenizer = _create_bundled(model_name, pretrained, device)
        base_id = model_name
    else:
        name, tag = split_clip_spec(model_name)
        if tag is not None:
            if pretrained not in (None, tag):
                raise ValueError(
                    f"{model_name!r} names pretrained {tag!r}; pass pretrained=None, not {pretrained!r}"
                )
            pretrained = tag
        model, preprocess, tokenizer = _create_open_clip(name, pretrained, device)
        is_tag = isinstance(pretrained, str) and not _looks_like_path(pretrained)
        base_id = join_clip_spec(name, pretrained if is_tag else None)
    model.base_model_id = base_id
    model.base_pretrained = pretrained
    return model.eval(), preprocess, tokenizer


def _create_bundled(name: str, pretrained: bool | str | None, device: torch.device):
    folder = resolve_asset(name)
    if not (folder / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"bundled model {name!r} ({folder}) has no {CONFIG_FILE}; not a CLIP model")
    load_bundled = pretrained is None or pretrained is True
    if load_bundled and not (folder / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(
            f"bundled model {name!r} has no {WEIGHTS_FILE} in {folder}; rebuild it with its recipe "
            "(assets/recipes/) or pass pretrained=False for random weights"
        )
    local = f"local-dir:{folder}"
    model, _, preprocess = open_clip.create_model_and_transforms(
        local, load_weights=load_bundled, device=device
    )
    if isinstance(pretrained, str):
        _check_file(pretrained)
        with reading(pretrained, "checkpoint"):
            open_clip.load_checkpoint(model, pretrained)  # reads on the CPU, copies into place
    return model, preprocess, open_clip.get_tokenizer(local)


def _create_open_clip(name: str, pretrained: bool | str | None, device: torch.device):
    if pretrained is True:
        raise ValueError(
            f"pretrained=True is ambiguous for {name!r}: pass a tag from "
            f"open_clip.list_pretrained_tags_by_model({name!r}) or a local checkpoint path"
        )
    if isinstance(pretrained, str) and _looks_like_path(pretrained):
        _check_file(pretrained)
    kwargs = open_clip_weights(name, pretrained)
    try:
        with reading(pretrained or name, "checkpoint"):
            model, _, preprocess = open_clip.create_model_and_transforms(name, device=device, **kwargs)
    except RuntimeError as err:
        if "not found in built-ins" in str(err):
            raise ValueError(f"unknown open_clip model {name!r}; see open_clip.list_models()") from None
        if "Failed to download" in str(err):
            raise OSError(
                f"could not fetch pretrained weights {pretrained!r} for {name!r} ({err}); offline, pass the "
                "path of a local checkpoint as pretrained='weights.safetensors'"
            ) from None
        raise
    return model, preprocess, open_clip.get_tokenizer(name)


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or Path(value).suffix in (".safetensors", ".pt", ".pth", ".bin")


def _check_file(path: str) -> None:
    if not Path(path).is_file():
        raise FileNotFoundError(f"pretrained checkpoint {path} does not exist")
