"""Where the bundled reference models live, and how names like "studio/shapes-vit" resolve to them."""

from __future__ import annotations

import os
from pathlib import Path

PREFIX = "studio/"


def assets_dir() -> Path:
    """The assets folder: `$STUDIO_ASSETS` if set, else `assets/` at the root of this source tree."""
    return Path(os.environ.get("STUDIO_ASSETS") or Path(__file__).resolve().parents[2] / "assets")


def is_asset_name(name: str) -> bool:
    """Whether `name` refers to a bundled reference model (`studio/<folder>`)."""
    return isinstance(name, str) and name.startswith(PREFIX)


def resolve_asset(name: str) -> Path:
    """The folder of bundled model `studio/<folder>`; an unknown name lists the ones that exist.

    Args:
        name: e.g. `"studio/shapes-vit"`.
    """
    folder = assets_dir() / name.removeprefix(PREFIX)
    if not folder.is_dir():
        available = (
            sorted(p.name for p in assets_dir().iterdir() if p.is_dir() and p.name != "recipes")
            if assets_dir().is_dir()
            else []
        )
        raise FileNotFoundError(
            f"no bundled model {name!r} in {assets_dir()}; available: {[PREFIX + a for a in available] or 'none'}"
        )
    return folder
