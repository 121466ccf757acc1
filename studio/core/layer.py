"""The base class of adapter layers: a wrapper around a frozen base module plus the method's parameters."""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn


class AdapterLayer(nn.Module):
    """Wraps `base_layer` and adds trainable parameters of its own.

    Subclasses implement `forward` (calling `self.base_layer` and, when `self.active`, their adapter)
    and, if the method is mergeable, `merge` / `unmerge`. Parameters registered directly on the wrapper
    (not inside `base_layer`) are the adapter's.

    Args:
        base_layer: the wrapped module (may be None for a layer that only adds parameters).
    """

    def __init__(self, base_layer: nn.Module | None) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.disabled = False
        self.merged = False

    @property
    def active(self) -> bool:
        """Whether the adapter branch runs in `forward` (not disabled, not already folded into the base)."""
        return not (self.disabled or self.merged)

    def adapter_named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """The parameters this layer adds, by local name."""
        for name, param in self.named_parameters():
            if not name.startswith("base_layer."):
                yield name, param

    def merge(self) -> None:
        """Fold the adapter into `base_layer`'s weights."""
        raise NotImplementedError(f"{type(self).__name__} cannot be merged")

    def unmerge(self) -> None:
        """Undo `merge`, restoring the base weights."""
        raise NotImplementedError(f"{type(self).__name__} cannot be unmerged")


def adapter_layers(model: nn.Module) -> list[tuple[str, AdapterLayer]]:
    """All adapter layers in `model`, by module name."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, AdapterLayer)]


def adapter_parameter_names(model: nn.Module) -> list[str]:
    """Full names of the parameters that adapter layers add (not those of the layers they wrap)."""
    names = []
    for prefix, layer in adapter_layers(model):
        names += [f"{prefix}.{n}" if prefix else n for n, _ in layer.adapter_named_parameters()]
    return names
