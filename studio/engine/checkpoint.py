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

CHECKPOINT_RE = re.compile(r"^step-(\d{6,})$")
TMP_PREFIX = ".tmp-"
STATE_FILE = "state.json"


def checkpoint_root(output_dir: str | os.PathLike) -> Path:
    """Folder that holds the `step-XXXXXX` checkpoints of a run.

    Args:
        output_dir: the run's output directory.

    Returns:
        `output_dir/checkpoints`.
    """
    return Path(output_dir) / "checkpoints"


def trainable_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Tensors a checkpoint stores: trainable parameters plus floating-point buffers, by name.

    Args:
        model: the unwrapped model.

    Returns:
        Name -> detached, contiguous CPU tensor.
    """
    tensors = {name: p for name, p in model.named_parameters() if p.requires_grad}
    tensors.update({name: b for name, b in model.named_buffers() if b.is_floating_point()})
    return {name: t.detach().cpu().contiguous() for name, t in tensors.items()}


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
    found = []
    for path in root.iterdir():
        match = CHECKPOINT_RE.match(path.name)
        if match and path.is_dir() and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


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
    if final.exists():
        # A checkpoint of the same step from an earlier run; os.replace cannot overwrite a non-empty dir.
        stale = root / f"{TMP_PREFIX}stale-{uuid.uuid4().hex[:8]}"
        os.replace(final, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.replace(tmp, final)
    return final


def prune_checkpoints(root: str | os.PathLike, keep: int) -> None:
    """Delete all but the newest `keep` complete checkpoints, and leftover temporary directories.

    Args:
        root: the checkpoints folder.
        keep: how many complete checkpoints to keep (>= 1).
    """
    root = Path(root)
    for path in list_checkpoints(root)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
    for path in root.iterdir():
        if path.name.startswith(TMP_PREFIX) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def load_tensors_into(model: nn.Module, path: str | os.PathLike) -> None:
    """Copy a checkpoint's `trainable.safetensors` into `model` in place.

    Args:
        model: the unwrapped model.
        path: the checkpoint directory.
    """
    tensors = load_file(str(Path(path) / "trainable.safetensors"))
    targets = dict(model.named_parameters())
    targets.update(dict(model.named_buffers()))
    unknown = [name for name in tensors if name not in targets]
    missing = [name for name, p in model.named_parameters() if p.requires_grad and name not in tensors]
    if unknown or missing:
        raise KeyError(
            f"checkpoint {path} does not fit the model: unknown {unknown[:5]}, missing {missing[:5]}"
        )
    with torch.no_grad():
        for name, tensor in tensors.items():
            targets[name].copy_(tensor)


def read_checkpoint_file(path: str | os.PathLike, name: str) -> Any:
    """Read one `torch.save`d file of a checkpoint, never unpickling arbitrary objects.

    Args:
        path: the checkpoint directory.
        name: file name, e.g. `"optimizer.pt"`.

    Returns:
        The loaded object (tensors and plain containers only).
    """
    return torch.load(Path(path) / name, map_location="cpu", weights_only=True)


def read_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint's `state.json`.

    Args:
        path: the checkpoint directory.
    """
    return json.loads((Path(path) / STATE_FILE).read_text())
