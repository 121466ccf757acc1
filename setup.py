"""Packaging that pyproject.toml cannot say on its own: the repository's `assets/` folder ships as the package
`studio_assets` (so the bundled models install with the code), next to the discovered code packages."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["studio*", "vision*", "vlm*", "diffusion*"]), "studio_assets"],
    package_dir={"studio_assets": "assets"},
)
