"""The bundled reference models, installed as the package `studio_assets`; `studio.core.resolve_asset` finds
them (see README.md here)."""
