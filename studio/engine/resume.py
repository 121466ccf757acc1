"""Finding the checkpoint to resume from, and restoring a run's full state from it."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from torch import nn

from .checkpoint import (
    checkpoint_root,
    latest_checkpoint,
    load_tensors_into,
    read_checkpoint_file,
    read_state,
)
from .rng import restore_rng_state


def resolve_resume(resume: bool | str | os.PathLike, output_dir: str | os.PathLike | None) -> Path | None:
    """Turn `train`'s `resume` argument into a checkpoint directory.

    Args:
        resume: `False`, `True` (newest complete checkpoint under `output_dir`), or a checkpoint path.
        output_dir: the run's output directory.

    Returns:
        The checkpoint to resume from, or `None` to start fresh.
    """
    if resume is False or resume is None:
        return None
    if resume is True:
        if output_dir is None:
            raise ValueError("resume=True needs output_dir to look for checkpoints in")
        return latest_checkpoint(checkpoint_root(output_dir))
    path = Path(resume)
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no state.json)")
    return path


def restore_run(
    path: Path,
    accelerator: Accelerator,
    model: nn.Module,
    optimizer: Any,
    scheduler: Any,
    expected: dict[str, Any],
) -> dict[str, Any]:
    """Load model tensors, optimizer, scheduler, gradient scaler and this process's RNG state.

    Args:
        path: the checkpoint directory.
        accelerator: the run's accelerator.
        model: the prepared model.
        optimizer: the prepared optimizer.
        scheduler: the LR scheduler.
        expected: `seed` and `total_steps` of the new run; a mismatch only warns.

    Returns:
        The checkpoint's `state.json` (step, epoch, batches_consumed, seed, total_steps).
    """
    saved = read_state(path)
    load_tensors_into(accelerator.unwrap_model(model), path)
    optimizer.load_state_dict(read_checkpoint_file(path, "optimizer.pt"))
    scheduler.load_state_dict(read_checkpoint_file(path, "scheduler.pt"))
    if accelerator.scaler is not None and (path / "scaler.pt").is_file():
        accelerator.scaler.load_state_dict(read_checkpoint_file(path, "scaler.pt"))
    rng_states = read_checkpoint_file(path, "rng.pt")["processes"]
    restore_rng_state(rng_states[min(accelerator.process_index, len(rng_states) - 1)])
    mismatched = {k: (saved.get(k), v) for k, v in expected.items() if saved.get(k) != v}
    if mismatched:
        warnings.warn(
            f"resuming {path} with different settings (saved, now): {mismatched}; "
            "the run will not match an uninterrupted one",
            stacklevel=3,
        )
    return saved
