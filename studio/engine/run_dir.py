"""A training owns its output folder: one training at a time (a lock file), and never two runs' checkpoints.

Without this, two trainings in one folder delete each other's checkpoints while pruning, and a new run in a
reused folder loses its checkpoints to the old run's higher step numbers (and a later resume returns the old
run's weights).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from .checkpoint import checkpoint_root, list_checkpoints
from .resume import find_resume_checkpoint

LOCK_FILE = ".train.lock"


class RunFolderError(ValueError):
    """The output folder belongs to another run or is in use by another training."""


def acquire_lock(folder: Path) -> Path:
    """Create `folder/.train.lock` holding this process's id, atomically (`O_EXCL`).

    A lock left by a process that no longer exists (a killed training) is taken over.

    Args:
        folder: the run's output folder (created if missing).

    Returns:
        The lock file; delete it to release the lock.

    Raises:
        RunFolderError: another live process holds the lock.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _lock_owner(path)
            if owner == 0:
                continue  # released meanwhile
            if owner is None or _is_alive(owner):
                raise RunFolderError(
                    f"{folder} is in use by another training (pid {owner or 'unknown'}); wait for it to "
                    f"finish, choose another output folder, or delete {path} if no training runs there"
                ) from None
            # Its process is gone: a stale lock. (Two trainings taking over the same stale lock in the same
            # instant could both pass; a lock that outlives its process is rare enough not to need more.)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(fd, "w") as file:
            file.write(str(os.getpid()))
        return path


def _lock_owner(path: Path) -> int | None:
    """The pid in a lock file; 0 when the file is gone, `None` when it holds no pid (yet)."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return 0
    return int(text) if text.isdigit() and int(text) > 0 else None


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def check_owner(folder: Path, resume_from: Path | None, overwrite: bool) -> list[Path]:
    """Refuse to start a run in a folder that holds another run's checkpoints.

    Args:
        folder: the run's output folder.
        resume_from: the checkpoint this run continues, if any.
        overwrite: the caller asked to replace the folder's run.

    Returns:
        The checkpoints to delete before training: the old run's with `overwrite`, else none.

    Raises:
        RunFolderError: the folder holds another run and `overwrite` is not set.
        ValueError: `overwrite` while continuing the folder's own run.
    """
    root = checkpoint_root(folder)
    existing = list_checkpoints(root)
    if resume_from is not None and resume_from.parent.resolve() == root.resolve():
        if overwrite:
            raise ValueError(f"overwrite=True would delete {resume_from}, the checkpoint to resume from")
        return []
    if not existing:
        return []
    if overwrite:
        return existing
    raise RunFolderError(
        f"{folder} already holds a run ({len(existing)} checkpoints, newest {existing[-1].name}); pass "
        "resume=True to continue it or overwrite=True to replace it (CLI: --resume / --overwrite)"
    )


@contextlib.contextmanager
def claim_run_folder(
    output_dir: str | os.PathLike | None,
    resume: bool | str | os.PathLike,
    overwrite: bool,
    accelerator: Accelerator,
) -> Iterator[dict[str, Any] | None]:
    """Hold the run folder for the duration of a training: lock it, check whose run it holds, and read the
    checkpoint to resume from.

    The main process takes the lock; its outcome is shared so that every process raises the same error.

    Args:
        output_dir: the run's output folder, or `None` for a run without checkpoints.
        resume: `train`'s `resume` argument.
        overwrite: delete the checkpoints of a run already in `output_dir` first.
        accelerator: the run's accelerator.

    Yields:
        The checkpoint to resume from (`read_checkpoint`'s result), or `None` to start fresh.

    Raises:
        RunFolderError: the folder is in use, or holds another run and `overwrite` is not set.
        ValueError: `overwrite` together with `resume=True`, or without `output_dir`.
    """
    if overwrite and (resume is True or output_dir is None):
        raise ValueError(
            "overwrite=True replaces the run in output_dir: it needs output_dir and excludes resume=True"
        )
    if output_dir is None:
        yield find_resume_checkpoint(resume, None)
        return
    folder = Path(output_dir)
    lock, error = None, None
    if accelerator.is_main_process:
        try:
            lock = acquire_lock(folder)
        except RunFolderError as err:
            error = err
    if accelerator.num_processes > 1:
        error = broadcast_object_list([error])[0]
    if error is not None:
        raise error
    try:
        checkpoint = find_resume_checkpoint(resume, folder)
        old_run = check_owner(folder, checkpoint["path"] if checkpoint else None, overwrite)
        accelerator.wait_for_everyone()  # every process has looked before the main one deletes
        if old_run and accelerator.is_main_process:
            shutil.rmtree(checkpoint_root(folder))
        yield checkpoint
    finally:
        if lock is not None:
            lock.unlink(missing_ok=True)
