"""Fingerprints of weights (cache keys, provenance checks) and the library version artifacts record."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch


@torch.no_grad()
def weights_fingerprint(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over the names, shapes, dtypes and bytes of tensors, in name order.

    Keyed by the bytes rather than by a model id: the same id can name retrained weights, and a stale cache
    entry or a classifier fitted on other weights would then be silently wrong.

    Args:
        tensors: tensors by name, e.g. `model.state_dict()`.

    Returns:
        The hex digest (64 characters).
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(tensors.items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def library_version() -> str:
    """The string every saved adapter and artifact records as `library`, e.g. `"adaptation-studio 0.1.0"`."""
    from studio import __version__

    return f"adaptation-studio {__version__}"
