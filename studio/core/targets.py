"""Choosing the modules a method adapts: by name (suffix or regex), by type, with exclusions."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from torch import nn


def _matches(name: str, patterns: str | Sequence[str]) -> bool:
    # peft's convention: a string is a regex on the full name, a list matches a name or a dotted suffix.
    if isinstance(patterns, str):
        return re.fullmatch(patterns, name) is not None
    return any(name == p or name.endswith("." + p) for p in patterns)


def find_targets(
    model: nn.Module,
    targets: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    predicate: Callable[[nn.Module], bool] | None = None,
    skip: Sequence[str] = (),
) -> list[tuple[str, nn.Module]]:
    """The `(name, module)` pairs to adapt, in model order.

    Args:
        model: the model to search.
        targets: a regex on the full module name (str), or a list of names / dotted suffixes;
            None selects every module that passes `predicate`.
        exclude: names to skip, same syntax; a skipped module's children are skipped too.
        predicate: a test on the module (e.g. its type).
        skip: module names whose whole subtree is left alone (e.g. the classifier head).

    Raises:
        ValueError: if nothing matches, listing a few module names to choose from.
    """
    found: list[tuple[str, nn.Module]] = []
    excluded: list[str] = list(skip)
    for name, module in model.named_modules():
        if not name:
            continue
        if (
            name in excluded
            or any(name.startswith(e + ".") for e in excluded)
            or (exclude is not None and _matches(name, exclude))
        ):
            excluded.append(name)
            continue
        if targets is not None and not _matches(name, targets):
            continue
        if predicate is not None and not predicate(module):
            continue
        found.append((name, module))
    if not found:
        sample = [n for n, _ in model.named_modules() if n][:12]
        raise ValueError(
            f"no module of {type(model).__name__} matches targets={targets!r} "
            f"(exclude={exclude!r}); some module names: {sample}"
        )
    return found


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put `new` at the dotted path `name` inside `model`."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
