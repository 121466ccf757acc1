"""Putting a model back exactly as it was when a change to it fails half-way."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def restored_on_error(model: nn.Module) -> Iterator[nn.Module]:
    """Undo every structural change made to `model` inside the block if the block raises.

    Records, for every module of the tree, its attributes and its child, parameter and buffer tables, and the
    `requires_grad` flag of every parameter; on an exception they are put back and the exception propagates.
    Tensor values are not recorded: the block must not write into existing tensors before it can fail.

    Args:
        model: the model the block changes (e.g. by `inject`).

    Yields:
        The same model.
    """
    saved = [
        (
            module,
            dict(module.__dict__),
            dict(module._modules),
            dict(module._parameters),
            dict(module._buffers),
        )
        for module in model.modules()
    ]
    flags = [(param, param.requires_grad) for param in model.parameters()]
    try:
        yield model
    except BaseException:
        for module, attributes, children, parameters, buffers in saved:
            module.__dict__.clear()
            module.__dict__.update(attributes)
            for table, entries in (
                (module._modules, children),
                (module._parameters, parameters),
                (module._buffers, buffers),
            ):
                table.clear()
                table.update(entries)
        for param, flag in flags:
            param.requires_grad_(flag)
        raise
