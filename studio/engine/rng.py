"""Capture and restore the global RNG states that dropout and data augmentation draw from."""

from __future__ import annotations

import random
from typing import Any

import torch

try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy ships with torch in practice
    np = None


def capture_rng_state() -> dict[str, Any]:
    """Snapshot this process's RNG states in a form `torch.load(weights_only=True)` accepts.

    Returns:
        A dict of tensors, ints, floats and tuples: torch CPU, every CUDA device (when available), Python
        `random` and NumPy's global generator.
    """
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if np is not None:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        # ndarrays are not weights_only-loadable; a tensor plus plain numbers is.
        state["numpy"] = {
            "kind": str(kind),
            "keys": torch.from_numpy(keys.astype("int64")),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        }
    return state


def _to_tuple(value: Any) -> Any:
    return tuple(_to_tuple(v) for v in value) if isinstance(value, list | tuple) else value


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore RNG states captured by `capture_rng_state`.

    Args:
        state: the snapshot.
    """
    torch.set_rng_state(state["torch"])
    # weights_only loading may hand tuples back as lists; `random.setstate` insists on tuples.
    random.setstate(_to_tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    if "numpy" in state and np is not None:
        ns = state["numpy"]
        np.random.set_state(
            (
                ns["kind"],
                ns["keys"].numpy().astype("uint32"),
                ns["pos"],
                ns["has_gauss"],
                ns["cached_gaussian"],
            )
        )
