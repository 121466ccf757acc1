"""Saving and loading adapters: `adapter_config.json` + `adapter_model.safetensors`, written atomically."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .fingerprint import library_version
from .inject import inject
from .registry import Method, get_method, list_methods, method_of
from .state import adapter_state_dict, get_adapter_state, require_adapter_state
from .undo import restored_on_error

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
    """Write tensors as safetensors, atomically (copies shared or non-contiguous tensors as needed).

    Raises:
        ValueError: a tensor holds NaN or infinite values (named); nothing is written.
    """
    check_finite(tensors, f"refusing to write {path}")
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def check_finite(tensors: dict[str, torch.Tensor], context: str) -> None:
    """Raise `ValueError` naming the first floating-point tensor that holds NaN or infinite values.

    Args:
        tensors: tensors by name.
        context: what was being done, the start of the message (e.g. `"refusing to write x.safetensors"`).
    """
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"{context}: tensor {name!r} holds NaN or infinite values (did the training diverge? "
                "try a lower learning rate)"
            )


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str = "tensor file") -> Iterator[None]:
    """Turn the errors libraries raise for a damaged or unsafe file into a `ValueError` naming the file.

    Covers safetensors' errors (truncated or corrupt file), `torch.load(weights_only=True)` refusing pickled
    objects, and a file that ends early.

    Args:
        path: the file being read.
        what: what the file should be, for the message (e.g. `"adapter weights file"`).
    """
    try:
        yield
    except SafetensorError as err:
        raise ValueError(f"{path} is not a readable {what} (damaged or truncated? {err})") from None
    except pickle.UnpicklingError as err:
        found = re.search(r"unsupported GLOBAL (\S+)", str(err))
        detail = f": it holds a pickled {found.group(1)}" if found else ""
        raise ValueError(
            f"{path} is not a plain {what}{detail}; pickled Python objects are never loaded (save tensors only, "
            "preferably as .safetensors)"
        ) from None
    except EOFError:
        raise ValueError(f"{path} is not a readable {what}: it ends early (truncated?)") from None


def read_tensors(path: str | os.PathLike, what: str = "safetensors file") -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, read in full on the CPU.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is damaged or truncated (named).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist")
    with reading(path, what), safe_open(str(path), framework="pt") as f:
        return {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open is not a dict)


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
    state = require_adapter_state(model)
    path = Path(path)
    save_tensors(path / WEIGHTS_NAME, adapter_state_dict(model), metadata={"format": "pt"})
    write_adapter_config(
        path,
        method_of(state.config).qualified_name,
        state.config.to_dict(),
        base_model or base_model_id(model),
        state.modules_to_save,
        metadata,
    )
    return path


def write_adapter_config(
    path: str | os.PathLike,
    method: str,
    config: dict[str, Any],
    base_model: str | None,
    modules_to_save: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write the `adapter_config.json` every adapter folder of the project carries (atomically).

    Args:
        path: the adapter folder.
        method: the method's qualified name `domain/name` (`Method.qualified_name`); written as `domain`
            and `method`.
        config: the method config as a dict (`config.to_dict()`).
        base_model: id of the base model the adapter was trained on.
        modules_to_save: base modules saved in full beside the adapter (e.g. the head).
        metadata: extra JSON-ready information (e.g. class names, metrics, a domain's own records).

    Returns:
        The written file.
    """
    file = Path(path) / CONFIG_NAME
    write_json(
        file,
        {
            "format_version": FORMAT_VERSION,
            **_split_name(method),
            "config": config,
            "base_model": base_model,
            "modules_to_save": list(modules_to_save or []) or None,
            "library": library_version(),
            "metadata": metadata or {},
        },
    )
    return file


def _split_name(qualified: str) -> dict[str, str]:
    domain, _, name = qualified.rpartition("/")
    return {"domain": domain, "method": name} if domain else {"method": name}


def adapter_method(data: dict[str, Any]) -> Method:
    """The registered method an `adapter_config.json` (as `read_adapter_config` returns it) was saved by.

    Files written before the domain was recorded name only the method; among adapter methods that name is
    unique.
    """
    if data.get("domain"):
        return get_method(data["method"], data["domain"])
    adapters = [m for m in list_methods() if m.name == data["method"] and m.apply is not None]
    return adapters[0] if len(adapters) == 1 else get_method(data["method"])


def read_adapter_config(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed `adapter_config.json` of an adapter folder, with a clear error if it is not one."""
    file = Path(path) / CONFIG_NAME
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not an adapter folder: {CONFIG_NAME} is missing")
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{file} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or "method" not in data or not isinstance(data.get("config"), dict):
        raise ValueError(f"{file} has no 'method'/'config': not an Adaptation Studio adapter")
    return data


def load_adapter(model: nn.Module, path: str | os.PathLike, check_base_model: bool = True) -> nn.Module:
    """Load an adapter saved by `save_adapter` into a base model (injecting the method first).

    All or nothing: the config and the whole weights file (readable, every tensor finite) are checked before
    the model is touched; names, shapes and dtypes are then checked against the injected adapter, which is
    taken out again if they do not fit. A failed load leaves the model exactly as it was, and no value of the
    model changes before every check has passed.

    Args:
        model: a fresh base model of the same architecture, or one already carrying the same method.
        path: the adapter folder.
        check_base_model: refuse an adapter recorded for another base model id.

    Returns:
        The model with the adapter's tensors loaded.

    Raises:
        FileNotFoundError: the folder lacks `adapter_config.json` or `adapter_model.safetensors`.
        ValueError: the config is invalid, another method is already injected, the base model differs, the
            weights file is damaged, or a tensor is missing, unexpected, of another shape or dtype, or not
            finite (the first offending tensor is named).
    """
    data = read_adapter_config(path)
    method = adapter_method(data)
    try:
        config = method.config_cls.from_dict(data["config"])
    except ValueError as err:
        raise ValueError(f"{Path(path) / CONFIG_NAME}: {err}") from None
    recorded, actual = data.get("base_model"), base_model_id(model)
    if check_base_model and recorded and actual and recorded != actual:
        raise ValueError(
            f"adapter at {path} was trained on base model {recorded!r}, but this model is {actual!r}; "
            "load it onto the same base (or pass check_base_model=False)"
        )
    state = get_adapter_state(model)
    if state is not None and state.config.method != config.method:
        raise ValueError(
            f"model already carries a {state.config.method!r} adapter; {path} holds a {config.method!r} adapter"
        )
    file = Path(path) / WEIGHTS_NAME
    tensors = read_tensors(file, "adapter weights file")
    check_finite(tensors, str(file))
    with restored_on_error(model):
        if state is None:
            inject(model, config)
        _check_tensors(adapter_state_dict(model), tensors, file)
    _copy_tensors(model, tensors)
    return model


def _check_tensors(targets: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], file: Path) -> None:
    unexpected = [k for k in tensors if k not in targets]
    if unexpected:
        raise ValueError(
            f"{file.name} has tensor {unexpected[0]!r} that this model's adapter does not have "
            "(saved from another architecture or method?)"
        )
    missing = [k for k in targets if k not in tensors]
    if missing:
        raise ValueError(f"{file.name} lacks tensor {missing[0]!r} that this model's adapter needs")
    for key, tensor in tensors.items():
        target = targets[key]
        if tensor.shape != target.shape:
            raise ValueError(
                f"adapter tensor {key!r} has shape {tuple(tensor.shape)} but the model expects "
                f"{tuple(target.shape)}: the adapter was saved from another architecture"
            )
        if tensor.dtype != target.dtype and not (tensor.is_floating_point() and target.is_floating_point()):
            raise ValueError(
                f"adapter tensor {key!r} has dtype {tensor.dtype} but the model expects {target.dtype}"
            )


@torch.no_grad()
def _copy_tensors(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    live = {**dict(model.named_buffers()), **dict(model.named_parameters())}
    for key, tensor in tensors.items():
        live[key].copy_(tensor)
