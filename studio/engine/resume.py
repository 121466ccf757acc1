"""Finding the checkpoint to resume from (skipping damaged ones), and restoring a run's full state from it."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from torch import nn

from .checkpoint import (
    DamagedCheckpointError,
    checkpoint_root,
    list_checkpoints,
    load_tensors_into,
    read_checkpoint,
)
from .rng import restore_rng_state


def find_resume_checkpoint(
    resume: bool | str | os.PathLike, output_dir: str | os.PathLike | None
) -> dict[str, Any] | None:
    """Turn `train`'s `resume` argument into a checkpoint read into memory.

    With `resume=True` a damaged newest checkpoint (truncated, corrupt, half-written by a failing disk) is
    skipped with a warning naming it, and the previous complete one is used.

    Args:
        resume: `False`, `True` (newest usable checkpoint under `output_dir`), or a checkpoint path.
        output_dir: the run's output directory.

    Returns:
        `read_checkpoint`'s result, or `None` to start fresh (`resume=False`, or no checkpoint yet).

    Raises:
        ValueError: `resume=True` without `output_dir`, or checkpoints that are all damaged.
        DamagedCheckpointError: the checkpoint named by path is damaged.
        FileNotFoundError: the path is not a checkpoint.
    """
    if resume is False or resume is None:
        return None
    if resume is not True:
        path = Path(resume)
        if not (path / "state.json").is_file():
            raise FileNotFoundError(f"{path} is not a complete checkpoint (no state.json)")
        return read_checkpoint(path)
    if output_dir is None:
        raise ValueError("resume=True needs output_dir to look for checkpoints in")
    root = checkpoint_root(output_dir)
    damaged = []
    for path in reversed(list_checkpoints(root)):
        try:
            checkpoint = read_checkpoint(path)
        except DamagedCheckpointError as err:
            damaged.append(str(err))
            continue
        if damaged:
            warnings.warn(f"{'; '.join(damaged)}; resuming from {path}", stacklevel=3)
        return checkpoint
    if damaged:
        raise ValueError(
            f"no usable checkpoint in {root}: {'; '.join(damaged)}; pass overwrite=True (CLI: --overwrite) "
            "to start a new run there"
        )
    return None


def restore_run(
    checkpoint: dict[str, Any],
    accelerator: Accelerator,
    model: nn.Module,
    optimizer: Any,
    scheduler: Any,
    expected: dict[str, Any],
) -> dict[str, Any]:
    """Load model tensors, optimizer, scheduler, gradient scaler and this process's RNG state.

    Args:
        checkpoint: what `find_resume_checkpoint` returned.
        accelerator: the run's accelerator.
        model: the prepared model.
        optimizer: the prepared optimizer.
        scheduler: the LR scheduler.
        expected: `seed` and `total_steps` of the new run.

    Returns:
        The checkpoint's `state.json` (step, epoch, batches_consumed, seed, total_steps).

    Raises:
        ValueError: the checkpoint has another `seed` or `total_steps`: it is a different run, and resuming it
            would mix the two (or, with fewer steps, train nothing and return the other run's weights).
        KeyError: the checkpoint's tensors do not fit the model.
    """
    saved, path = checkpoint["state"], checkpoint["path"]
    mismatched = {key: (saved[key], value) for key, value in expected.items() if saved[key] != value}
    if mismatched:
        settings = ", ".join(f"{key} {old} (now {new})" for key, (old, new) in mismatched.items())
        raise ValueError(
            f"{path} belongs to a different run: it has {settings}; resume it with its own settings, or "
            "start a new run with overwrite=True (CLI: --overwrite)"
        )
    load_tensors_into(accelerator.unwrap_model(model), checkpoint)
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    if accelerator.scaler is not None and checkpoint["scaler"] is not None:
        accelerator.scaler.load_state_dict(checkpoint["scaler"])
    rng_states = checkpoint["rng"]
    restore_rng_state(rng_states[min(accelerator.process_index, len(rng_states) - 1)])
    return saved
