"""Injecting SVDiff into a UNet or text encoder, the on-disk SVD cache, and per-kind learning rates."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from studio.core import (
    adapter_layers,
    find_targets,
    replace_module,
    save_tensors,
    weights_fingerprint,
)

from .config import SVDiffConfig
from .layer import NORM_TYPES, NormShift, SpectralShift

CACHE_ENV = "STUDIO_SVD_CACHE"
MATRIX_TYPES = (nn.Linear, nn.Conv2d)


def svd_cache_dir() -> Path:
    """Where SVDs are cached: `$STUDIO_SVD_CACHE`, else `~/.cache/adaptation-studio/svd`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "adaptation-studio" / "svd")


@torch.no_grad()
def svd_factors(weights: dict[str, torch.Tensor], cache_dir: str | os.PathLike | None = None):
    """`(U, σ, Vᵀ)` of each weight (flattened to 2-D), loaded from the cache or computed once and cached.

    Args:
        weights: weights by module name.
        cache_dir: cache folder (default `svd_cache_dir()`).

    Returns:
        Module name -> `(u, s, vh)` float32 CPU tensors.
    """
    folder = Path(cache_dir) if cache_dir is not None else svd_cache_dir()
    file = folder / f"svd-{weights_fingerprint(weights)}.safetensors"
    if file.is_file():
        cached = load_file(str(file))
        return {name: (cached[f"{name}.u"], cached[f"{name}.s"], cached[f"{name}.vh"]) for name in weights}
    factors = {}
    for name, weight in weights.items():
        matrix = weight.detach().float().reshape(weight.shape[0], -1)  # on the weight's device (fast on GPU)
        factors[name] = tuple(t.cpu() for t in torch.linalg.svd(matrix, full_matrices=False))
    save_tensors(
        file,
        {
            f"{name}.{part}": t
            for name, f in factors.items()
            for part, t in zip(("u", "s", "vh"), f, strict=True)
        },
    )
    return factors


def _targets(model: nn.Module, config: SVDiffConfig) -> list[tuple[str, nn.Module]]:
    kinds = MATRIX_TYPES + (NORM_TYPES if config.include_norms else ())

    def eligible(module: nn.Module) -> bool:
        if not isinstance(module, kinds) or isinstance(module, (SpectralShift, NormShift)):
            return False
        # A norm layer without affine weights has nothing to shift.
        return not isinstance(module, NORM_TYPES) or getattr(module, "weight", None) is not None

    return find_targets(model, config.targets, config.exclude, predicate=eligible)


def apply_svdiff(model: nn.Module, config: SVDiffConfig) -> None:
    """Wrap every targeted weight of `model` in a spectral shift and every norm in a norm shift (for `inject`)."""
    targets = _targets(model, config)
    matrices = {name: m.weight for name, m in targets if isinstance(m, MATRIX_TYPES)}
    factors = svd_factors(matrices)
    for name, module in targets:
        if isinstance(module, MATRIX_TYPES):
            layer = SpectralShift(module, *factors[name], scale=config.scale)
        else:
            layer = NormShift(module, scale=config.scale)
        replace_module(model, name, layer)


def svdiff_param_groups(model: nn.Module, lr: float, lr_norm: float) -> list[dict]:
    """Two optimizer groups: spectral shifts at `lr`, norm shifts at `lr_norm` (the paper: 1e-3 and 1e-6).

    Args:
        model: a module holding SVDiff layers (e.g. the training wrapper around UNet and text encoder).
        lr: learning rate of the singular-value shifts.
        lr_norm: learning rate of the norm-weight shifts.

    Returns:
        Group dicts for `studio.engine.train(param_groups=...)`; an empty group is dropped by the engine.
    """
    layers = [layer for _, layer in adapter_layers(model)]
    spectral = [layer.delta for layer in layers if isinstance(layer, SpectralShift)]
    norms = [layer.delta for layer in layers if isinstance(layer, NormShift)]
    return [{"params": spectral, "lr": lr}, {"params": norms, "lr": lr_norm}]


def count_singular_values(model: nn.Module) -> dict[str, int]:
    """Trainable numbers per kind: `{"singular_values": ..., "norm_weights": ...}`."""
    counts = {"singular_values": 0, "norm_weights": 0}
    for _, layer in adapter_layers(model):
        key = "singular_values" if isinstance(layer, SpectralShift) else "norm_weights"
        counts[key] += layer.delta.numel()
    return counts
