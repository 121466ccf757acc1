"""Loading a Stable-Diffusion-format pipeline: a bundled reference model, a local folder, a single file or a hub id."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline

from studio.core import is_asset_name, resolve_asset

from .single_file import check_config_folder, checkpoint_family, shipped_config

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
PIPELINE_CLASSES = {cls.__name__: cls for cls in (StableDiffusionPipeline, StableDiffusionXLPipeline)}
"""The text-to-image pipelines loaded, by the `_class_name` a diffusers folder's `model_index.json` records."""


def load_pipeline(
    name_or_path: str | os.PathLike,
    torch_dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    disable_progress_bar: bool = False,
    config: str | os.PathLike | None = None,
) -> StableDiffusionPipeline | StableDiffusionXLPipeline:
    """Load a Stable Diffusion 1.x/2.x or SDXL text-to-image pipeline.

    Args:
        name_or_path: `"studio/shapes-sd"` (a bundled reference model), a local diffusers folder (its
            `model_index.json` says which pipeline: `StableDiffusionPipeline` or `StableDiffusionXLPipeline`), a single
            `.safetensors` checkpoint in the original layout (SD 1.x, SD 2.x or SDXL base, recognised by its
            keys and loaded offline with `from_single_file` and the configs shipped with the package), or a
            hub id such as `"stable-diffusion-v1-5/stable-diffusion-v1-5"`.
        torch_dtype: dtype of the weights (e.g. `torch.float16`); None keeps diffusers' default (float32).
        device: where to move the pipeline (e.g. `"cuda"`); None leaves it on the CPU.
        disable_progress_bar: silence the per-step progress bar while sampling.
        config: for a single file, a diffusers folder (configs and tokenizer files suffice) describing its
            architecture, instead of the shipped one (e.g. for an SD 2.x 512-px epsilon model, which the
            keys do not tell from the shipped 768-px v-prediction SD 2.1 config).

    Returns:
        The pipeline, with `pipe.base_model_id` set to `name_or_path` (recorded by trained artifacts).

    Raises:
        FileNotFoundError: for an unknown `studio/...` name, a missing local file, or a file missing from
            `config` (named).
        ValueError: for a `.ckpt` file (a pickle; only safetensors are loaded), an unsupported file type, a
            checkpoint of an unknown architecture, or a folder of an unsupported pipeline class.
        OSError: when a hub id cannot be fetched (e.g. offline and not cached).
    """
    name = os.fspath(name_or_path)
    kwargs = {} if torch_dtype is None else {"torch_dtype": torch_dtype}
    path = Path(name)
    if is_asset_name(name) and not path.exists():
        pipe = _from_folder(resolve_asset(name), kwargs)
    elif path.is_dir():
        pipe = _from_folder(path, kwargs)
    elif path.suffix in SINGLE_FILE_SUFFIXES or path.is_file():
        pipe = _from_single_file(path, kwargs, config)
    else:
        pipe = _from_hub(name, kwargs)
    pipe.base_model_id = name
    if device is not None:
        pipe.to(device)
    if disable_progress_bar:
        pipe.set_progress_bar_config(disable=True)
    return pipe


def pipeline_class(folder: str | os.PathLike) -> type:
    """The pipeline class a diffusers folder holds (SD 1.x/2.x or SDXL), from its `model_index.json`.

    Raises:
        FileNotFoundError: no `model_index.json`.
        ValueError: a pipeline class that is not one of `PIPELINE_CLASSES`.
    """
    index = Path(folder) / "model_index.json"
    if not index.is_file():
        raise FileNotFoundError(f"{folder} is not a diffusers pipeline folder (no model_index.json)")
    return _named_class(json.loads(index.read_text()).get("_class_name"), folder)


def _named_class(name: str | None, folder) -> type:
    if name not in PIPELINE_CLASSES:
        raise ValueError(
            f"{folder} holds a {name!r}; supported pipelines are {', '.join(PIPELINE_CLASSES)} "
            "(Stable Diffusion 1.x/2.x and SDXL base models)"
        )
    return PIPELINE_CLASSES[name]


def _from_folder(folder: Path, kwargs: dict):
    return pipeline_class(folder).from_pretrained(folder, local_files_only=True, **kwargs)


def _from_single_file(path: Path, kwargs: dict, config: str | os.PathLike | None):
    if path.suffix == ".ckpt":
        raise ValueError(
            f"{path}: .ckpt checkpoints are pickles and are never unpickled here; convert it to "
            ".safetensors (or a diffusers folder) first"
        )
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: expected a diffusers folder or a single .safetensors checkpoint")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    configs = (
        contextlib.nullcontext(Path(config))
        if config is not None
        else shipped_config(checkpoint_family(path))
    )
    with configs as folder:
        check_config_folder(folder)
        cls = pipeline_class(folder)
        try:
            return cls.from_single_file(str(path), config=str(folder), local_files_only=True, **kwargs)
        except OSError as err:  # a user's config folder that lacks a file diffusers needs
            raise OSError(f"could not load {path} with the configs in {folder}: {err}") from None


def _from_hub(repo_id: str, kwargs: dict):
    try:
        cls = _named_class(DiffusionPipeline.load_config(repo_id).get("_class_name"), repo_id)
        return cls.from_pretrained(repo_id, **kwargs)
    except OSError as err:
        raise OSError(
            f"could not load {repo_id!r} from the hub or its cache ({err}); offline, pass a local diffusers "
            "folder, a .safetensors file, or the bundled 'studio/shapes-sd'"
        ) from None
