"""Saving and loading adapters: `adapter_config.json` + `adapter_model.safetensors`, written atomically."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .inject import inject
from .registry import get_method
from .state import adapter_state_dict, get_adapter_state, require_adapter_state

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
FORMAT_VERSION = 1


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` in one step.

    A crash mid-write leaves the old file (or none), never a truncated one.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; give the usual permissions
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, data: dict[str, Any]) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_tensors(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Write tensors as safetensors, atomically (copies shared or non-contiguous tensors as needed)."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def base_model_id(model: nn.Module) -> str | None:
    """The base model id a domain's loader recorded on the model (`model.base_model_id`), if any."""
    return getattr(model, "base_model_id", None)


def save_adapter(
    model: nn.Module,
    path: str | os.PathLike,
    base_model: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Save only the adapter: its own tensors and the modules_to_save (e.g. the head).

    Args:
        model: a model carrying an adapter (see `inject`).
        path: output folder; gets `adapter_config.json` and `adapter_model.safetensors`.
        base_model: id of the base model; defaults to the one the domain's loader recorded.
        metadata: extra JSON-ready information stored in the config (e.g. class names, metrics).

    Returns:
        The output folder.
    """
    from studio import __version__

    state = require_adapter_state(model)
    path = Path(path)
    save_tensors(path / WEIGHTS_NAME, adapter_state_dict(model), metadata={"format": "pt"})
    write_json(
        path / CONFIG_NAME,
        {
            "format_version": FORMAT_VERSION,
            "method": state.config.method,
            "config": state.config.to_dict(),
            "base_model": base_model or base_model_id(model),
            "modules_to_save": state.modules_to_save,
            "library": f"adaptation-studio {__version__}",
            "metadata": metadata or {},
        },
    )
    return path


def read_adapter_config(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed `adapter_config.json` of an adapter folder, with a clear error if it is not one."""
    file = Path(path) / CONFIG_NAME
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not an adapter folder: {CONFIG_NAME} is missing")
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{file} is not valid JSON: {err}") from None
    if "method" not in data or "config" not in data:
        raise ValueError(f"{file} has no 'method'/'config': not an Adaptation Studio adapter")
    return data


def load_adapter(model: nn.Module, path: str | os.PathLike, check_base_model: bool = True) -> nn.Module:
    """Load an adapter saved by `save_adapter` into a base model (injecting the method first).

    Args:
        model: a fresh base model of the same architecture, or one already carrying the same method.
        path: the adapter folder.
        check_base_model: refuse an adapter recorded for another base model id.

    Returns:
        The model with the adapter's tensors loaded.

    Raises:
        ValueError: another method is already injected, the base model differs, or a tensor is missing,
            unexpected or of another shape (the first mismatching tensor is named).
    """
    data = read_adapter_config(path)
    method = get_method(data["method"])
    config = method.config_cls.from_dict(data["config"])
    recorded, actual = data.get("base_model"), base_model_id(model)
    if check_base_model and recorded and actual and recorded != actual:
        raise ValueError(
            f"adapter at {path} was trained on base model {recorded!r}, but this model is {actual!r}; "
            "load it onto the same base (or pass check_base_model=False)"
        )
    state = get_adapter_state(model)
    if state is None:
        inject(model, config)
    elif state.config.method != config.method:
        raise ValueError(
            f"model already carries a {state.config.method!r} adapter; {path} holds a {config.method!r} adapter"
        )
    _load_tensors(model, Path(path) / WEIGHTS_NAME)
    return model


@torch.no_grad()
def _load_tensors(model: nn.Module, file: Path) -> None:
    targets = adapter_state_dict(model)
    live = {**dict(model.named_buffers()), **dict(model.named_parameters())}
    with safe_open(str(file), framework="pt") as f:
        keys = list(f.keys())
        unexpected = [k for k in keys if k not in targets]
        if unexpected:
            raise ValueError(
                f"{file.name} has tensor {unexpected[0]!r} that this model's adapter does not have "
                "(saved from another architecture or method?)"
            )
        missing = [k for k in targets if k not in keys]
        if missing:
            raise ValueError(f"{file.name} lacks tensor {missing[0]!r} that this model's adapter needs")
        for key in keys:
            tensor = f.get_tensor(key)
            if tensor.shape != targets[key].shape:
                raise ValueError(
                    f"adapter tensor {key!r} has shape {tuple(tensor.shape)} but the model expects "
                    f"{tuple(targets[key].shape)}: the adapter was saved from another architecture"
                )
            live[key].copy_(tensor)
