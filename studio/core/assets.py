"""Where the bundled reference models live, and how names like "studio/shapes-vit" resolve to them."""

from __future__ import annotations

import importlib.util
import os
from importlib.resources import files
from pathlib import Path

PREFIX = "studio/"
PACKAGE = "studio_assets"  # the repository's `assets/` folder, as installed (see setup.py)


def assets_dir() -> Path:
    """The folder of the bundled models.

    Returns:
        `$STUDIO_ASSETS` if set; else the installed package `studio_assets`; else, in a checkout whose code runs
        from the source tree without an install of that package, `assets/` at the root of the tree.
    """
    if os.environ.get("STUDIO_ASSETS"):
        return Path(os.environ["STUDIO_ASSETS"])
    if importlib.util.find_spec(PACKAGE) is not None:
        return Path(str(files(PACKAGE)))
    return Path(__file__).resolve().parents[2] / "assets"


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
