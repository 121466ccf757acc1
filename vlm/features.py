"""Frozen image features, computed once: image loading, seeded augmented views, memory and disk caches."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from studio.core import save_tensors, weights_fingerprint
from studio.images import load_image

ImageLike = Image.Image | str | os.PathLike


def image_key(image: Image.Image) -> str:
    """sha256 of an image's size and RGB pixels: the cache key, independent of file name or format.

    Args:
        image: an RGB PIL image, as `studio.images.load_image` gives it (so a 16-bit file is keyed by its
            scaled pixels, not by the white that PIL's own conversion clips it to).
    """
    if image.mode != "RGB":
        raise ValueError(
            f"image_key needs an RGB image (see studio.images.load_image), got mode {image.mode}"
        )
    digest = hashlib.sha256(f"{image.size[0]}x{image.size[1]}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def augment(image: Image.Image, seed: int) -> Image.Image:
    """Random resized crop (scale 0.5–1, aspect 3/4–4/3, back to the original size) and a horizontal flip
    with probability 1/2, drawn from `seed`: the same seed always gives the same view.

    Args:
        image: an RGB image.
        seed: seed of this view.
    """
    rng = np.random.default_rng(seed)
    width, height = image.size
    area = width * height * rng.uniform(0.5, 1.0)
    ratio = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    w = int(round(min(width, np.sqrt(area * ratio))))
    h = int(round(min(height, np.sqrt(area / ratio))))
    left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    view = image.crop((left, top, left + w, top + h)).resize((width, height), Image.Resampling.BICUBIC)
    return view.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else view


def default_cache_dir() -> Path:
    """`$STUDIO_CACHE/clip-features` if `STUDIO_CACHE` is set, else `~/.cache/adaptation-studio/clip-features`."""
    root = os.environ.get("STUDIO_CACHE")
    return (
        Path(root) / "clip-features"
        if root
        else Path.home() / ".cache" / "adaptation-studio" / "clip-features"
    )


class ImageFeatures:
    """Encodes images with a frozen CLIP image tower, caching every feature in memory and on disk.

    A feature is keyed by (model id + weight fingerprint, view id, sha256 of the pixels); a hit never runs
    the image tower. View 0 is the plain image; view `v >= 1` is augmented view `v` under seed `seed`.

    Args:
        model: an open_clip model (`encode_image`).
        preprocess: its image transform (PIL image -> tensor).
        model_id: the base model id (part of the disk cache folder name).
        cache_dir: disk cache root; None: `default_cache_dir()`; False: memory only.
        batch_size: images per image-tower forward pass.
    """

    def __init__(
        self,
        model: nn.Module,
        preprocess: Callable[[Image.Image], torch.Tensor],
        model_id: str,
        cache_dir: str | os.PathLike | None | bool = None,
        batch_size: int = 64,
    ) -> None:
        self.model, self.preprocess, self.model_id, self.batch_size = model, preprocess, model_id, batch_size
        self.cache_root = None if cache_dir is False else Path(cache_dir or default_cache_dir())
        self.memory: dict[tuple[str, str], torch.Tensor] = {}
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        """The weight fingerprint of the model (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.model.state_dict())
        return self._fingerprint

    @property
    def device(self) -> torch.device:
        """The model's device."""
        return next(self.model.parameters()).device

    def _disk_path(self, view_id: str, key: str) -> Path | None:
        if self.cache_root is None:
            return None
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model_id).strip("_")[:80]
        return self.cache_root / f"{slug}-{self.fingerprint[:16]}" / view_id / f"{key}.safetensors"

    def encode(self, images: Sequence[Image.Image], view: int = 0, seed: int = 0) -> torch.Tensor:
        """L2-normalised float32 features of `images` (on the CPU), one row per image.

        Args:
            images: PIL images; any that is not RGB is first brought to RGB by `studio.images.load_image`.
            view: 0 for the plain image, `v >= 1` for augmented view `v`.
            seed: seed of the augmented views (ignored for view 0).
        """
        images = [image if image.mode == "RGB" else load_image(image) for image in images]
        view_id = "plain" if view == 0 else f"aug-s{seed}-v{view}"
        keys = [image_key(image) for image in images]
        out: list[torch.Tensor | None] = [self._lookup(view_id, key) for key in keys]
        missing = [i for i, feature in enumerate(out) if feature is None]
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            views = [self._view(images[i], keys[i], view, seed) for i in chunk]
            features = self._run_tower(views)
            for i, feature in zip(chunk, features, strict=True):
                out[i] = self._store(view_id, keys[i], feature)
        if not out:
            return torch.zeros(0, 0)
        return torch.stack(out)  # type: ignore[arg-type]

    @staticmethod
    def _view(image: Image.Image, key: str, view: int, seed: int) -> Image.Image:
        if view == 0:
            return image
        # The view's randomness depends on the image itself, so a cached view matches a recomputed one
        return augment(
            image, int(np.random.SeedSequence([seed, view, int(key[:15], 16)]).generate_state(1)[0])
        )

    @torch.no_grad()
    def _run_tower(self, images: list[Image.Image]) -> torch.Tensor:
        batch = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        was_training = self.model.training
        self.model.eval()
        try:
            features = self.model.encode_image(batch)
        finally:
            self.model.train(was_training)
        return F.normalize(features.float(), dim=-1).cpu()

    def _lookup(self, view_id: str, key: str) -> torch.Tensor | None:
        feature = self.memory.get((view_id, key))
        path = self._disk_path(view_id, key)
        if feature is None and path is not None and path.is_file():
            feature = self.memory[(view_id, key)] = load_file(str(path))["feature"]
        return feature

    def _store(self, view_id: str, key: str, feature: torch.Tensor) -> torch.Tensor:
        feature = feature.clone()
        self.memory[(view_id, key)] = feature
        path = self._disk_path(view_id, key)
        if path is not None:
            save_tensors(path, {"feature": feature}, metadata={"model_id": self.model_id, "view": view_id})
        return feature

    def info(self) -> dict[str, Any]:
        """Cache location and size, for reports."""
        return {"cache_dir": str(self.cache_root) if self.cache_root else None, "in_memory": len(self.memory)}
