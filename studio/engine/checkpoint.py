"""Atomic checkpoint directories: write, find, prune and load."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from studio.core import check_finite

CHECKPOINT_RE = re.compile(r"^step-(\d{6,})$")
TMP_PREFIX = ".tmp-"
STATE_FILE = "state.json"
STATE_FIELDS = ("step", "epoch", "batches_consumed", "seed", "total_steps")


class DamagedCheckpointError(ValueError):
    """A checkpoint whose files cannot be read back (truncated, corrupt or missing)."""


def checkpoint_root(output_dir: str | os.PathLike) -> Path:
    """Folder that holds the `step-XXXXXX` checkpoints of a run.

    Args:
        output_dir: the run's output directory.

    Returns:
        `output_dir/checkpoints`.
    """
    return Path(output_dir) / "checkpoints"


def _stored_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Tensors a checkpoint stores, where they live: trainable parameters plus floating-point buffers."""
    tensors = {name: p for name, p in model.named_parameters() if p.requires_grad}
    tensors.update({name: b for name, b in model.named_buffers() if b.is_floating_point()})
    return tensors


def trainable_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Tensors a checkpoint stores: trainable parameters plus floating-point buffers, by name.

    Args:
        model: the unwrapped model.

    Returns:
        Name -> detached, contiguous CPU tensor.
    """
    return {name: t.detach().cpu().contiguous() for name, t in _stored_tensors(model).items()}


def check_finite_tensors(model: nn.Module, step: int) -> None:
    """Refuse to go on with (and save) a model whose trainable tensors hold NaN or infinity.

    Args:
        model: the unwrapped model.
        step: the optimizer step reached, for the message.

    Raises:
        ValueError: naming the first non-finite tensor and the step.
    """
    with torch.no_grad():
        check_finite(_stored_tensors(model), f"non-finite values at step {step}, nothing is saved")


def checkpoint_step(path: str | os.PathLike) -> int:
    """The step number in a checkpoint folder's name `step-000123`.

    Args:
        path: the checkpoint directory.
    """
    return int(CHECKPOINT_RE.match(Path(path).name).group(1))


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under `root`, oldest first.

    A checkpoint counts only once its `state.json` (written last) is there; temporary directories from an
    interrupted write are never listed.

    Args:
        root: the checkpoints folder.

    Returns:
        Paths sorted by step.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    found = [
        path
        for path in root.iterdir()
        if CHECKPOINT_RE.match(path.name) and path.is_dir() and (path / STATE_FILE).is_file()
    ]
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint under `root`, or `None`.

    Args:
        root: the checkpoints folder.
    """
    checkpoints = list_checkpoints(root)
    return checkpoints[-1] if checkpoints else None


def save_checkpoint(
    root: str | os.PathLike,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rng_states: list[dict[str, Any]],
    state: dict[str, Any],
    scaler: Any = None,
) -> Path:
    """Write `root/step-{step:06d}` atomically: into a temporary sibling, then `os.replace`.

    Args:
        root: the checkpoints folder.
        step: optimizer steps done.
        model: the unwrapped model.
        optimizer: the optimizer.
        scheduler: the LR scheduler.
        rng_states: one `capture_rng_state()` snapshot per process, by process index.
        state: loop position (step, epoch, batches consumed, seed, total steps), saved as `state.json`.
        scaler: the fp16 gradient scaler, if any.

    Returns:
        The checkpoint directory.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f"{TMP_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    save_file(trainable_tensors(model), str(tmp / "trainable.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save({"processes": rng_states}, tmp / "rng.pt")
    if scaler is not None:
        torch.save(scaler.state_dict(), tmp / "scaler.pt")
    # state.json last: its presence marks the checkpoint complete.
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=2))
    # On disk before the rename makes the checkpoint visible: a power loss must not leave a complete-looking
    # checkpoint with empty files.
    for path in tmp.iterdir():
        _fsync(path)
    _fsync(tmp)
    if final.exists():
        # A checkpoint of the same step from an abandoned attempt; os.replace cannot overwrite a non-empty dir.
        stale = root / f"{TMP_PREFIX}stale-{uuid.uuid4().hex[:8]}"
        os.replace(final, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.replace(tmp, final)
    _fsync(root)  # makes the rename itself durable
    return final


def _fsync(path: Path) -> None:
    """Flush a file or a directory to disk (directories cannot be opened for this on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (IsADirectoryError, PermissionError):
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune_checkpoints(root: str | os.PathLike, keep: int, step: int) -> None:
    """Keep the newest `keep` checkpoints up to `step`, the one just written; delete the rest and leftover
    temporary directories.

    Checkpoints past `step` belong to an abandoned continuation (the run was resumed from an earlier
    checkpoint): they go too, so the newest checkpoint is always the current run's.

    Args:
        root: the checkpoints folder.
        keep: how many complete checkpoints to keep (>= 1).
        step: the step of the checkpoint just written.
    """
    root = Path(root)
    checkpoints = list_checkpoints(root)
    older = [path for path in checkpoints if checkpoint_step(path) <= step]
    newer = [path for path in checkpoints if checkpoint_step(path) > step]
    for path in newer + older[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
    for path in root.iterdir():
        if path.name.startswith(TMP_PREFIX) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read every file of a checkpoint into memory, never unpickling arbitrary objects.

    Reading all files first, before touching the model, lets a damaged checkpoint be skipped cleanly.

    Args:
        path: the checkpoint directory.

    Returns:
        `{"path", "state", "tensors", "optimizer", "scheduler", "rng", "scaler"}`; `scaler` is `None` for a
        run without an fp16 gradient scaler.

    Raises:
        DamagedCheckpointError: a file is missing, truncated or corrupt, or `state.json` lacks a field.
    """
    path = Path(path)
    readers = {
        "state": (STATE_FILE, _read_state),
        "tensors": ("trainable.safetensors", lambda file: load_file(str(file))),
        "optimizer": ("optimizer.pt", _torch_load),
        "scheduler": ("scheduler.pt", _torch_load),
        "rng": ("rng.pt", lambda file: _torch_load(file)["processes"]),
        "scaler": ("scaler.pt", lambda file: _torch_load(file) if file.is_file() else None),
    }
    loaded: dict[str, Any] = {"path": path}
    for key, (name, read) in readers.items():
        try:
            loaded[key] = read(path / name)
        except Exception as err:  # noqa: BLE001 - every reader's own error type means the same: damaged
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise DamagedCheckpointError(f"checkpoint {path} is damaged ({name}: {reason})") from err
    return loaded


def _torch_load(file: Path) -> Any:
    return torch.load(file, map_location="cpu", weights_only=True)


def _read_state(file: Path) -> dict[str, Any]:
    state = json.loads(file.read_text())
    missing = [key for key in STATE_FIELDS if not isinstance(state.get(key), int)]
    if missing:
        raise ValueError(f"no integer {', '.join(missing)}")
    return state


def load_tensors_into(model: nn.Module, checkpoint: dict[str, Any]) -> None:
    """Copy a checkpoint's trainable tensors into `model` in place.

    Args:
        model: the unwrapped model.
        checkpoint: what `read_checkpoint` returned.

    Raises:
        KeyError: the checkpoint's tensors do not fit the model.
    """
    tensors = checkpoint["tensors"]
    targets = dict(model.named_parameters())
    targets.update(dict(model.named_buffers()))
    unknown = [name for name in tensors if name not in targets]
    missing = [name for name, p in model.named_parameters() if p.requires_grad and name not in tensors]
    if unknown or missing:
        raise KeyError(
            f"checkpoint {checkpoint['path']} does not fit the model: unknown {unknown[:5]}, missing {missing[:5]}"
        )
    with torch.no_grad():
        for name, tensor in tensors.items():
            targets[name].copy_(tensor)
