"""Loading and normalising user images for training: paths or PIL images in, same-size RGB images out.

Every image goes through `studio.images.load_image` (EXIF rotation, transparency on white, 16-bit scaled by bit
depth, palette, CMYK, grayscale, full decode); mixed sizes are resized so the short side fits, then
centre-cropped. Corrupt files, non-images and empty inputs raise a `ValueError` that names the offending item.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from studio.images import IMAGE_SUFFIXES, load_image

ImageInput = str | os.PathLike | Image.Image | np.ndarray


def pipeline_resolution(pipe) -> int:
    """The pixel resolution a Stable-Diffusion-format pipeline was trained at (`unet.sample_size × vae scale`).

    Args:
        pipe: a diffusers pipeline with `unet` and `vae_scale_factor`.

    Returns:
        The side length in pixels (e.g. 512 for SD 1.5, 64 for `studio/shapes-sd`).
    """
    sample_size = pipe.unet.config.sample_size
    sample_size = sample_size[0] if isinstance(sample_size, (list, tuple)) else sample_size
    return int(sample_size * pipe.vae_scale_factor)


def list_image_files(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside `folder`, sorted by name (hidden files skipped).

    Args:
        folder: a directory.

    Returns:
        The paths whose suffix is a known image type.
    """
    folder = Path(folder)
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _expand(images: ImageInput | Iterable[ImageInput]) -> list[ImageInput]:
    # A folder (or one path / image) stands for its images; anything else is an iterable of items.
    if isinstance(images, (str, os.PathLike)):
        path = Path(images)
        if path.is_dir():
            return list(list_image_files(path))
        return [path]
    if isinstance(images, (Image.Image, np.ndarray)):
        return [images]
    return list(images)


def fit_square(image: Image.Image, size: int) -> Image.Image:
    """Resize so the short side is `size` (bicubic, antialiased), then centre-crop to `size × size`.

    Args:
        image: an RGB image.
        size: the output side length.

    Returns:
        A `size × size` image.
    """
    return ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC, centering=(0.5, 0.5))


def load_images(
    images: ImageInput | Sequence[ImageInput], size: int, min_images: int = 1
) -> list[Image.Image]:
    """Load user images and bring them to one training format: upright RGB, `size × size`.

    Args:
        images: a folder, one image path, a PIL image, an HxW(xC) uint8 array, or a sequence of these.
        size: output side length in pixels (e.g. `pipeline_resolution(pipe)`).
        min_images: how many images at least are required.

    Returns:
        The images, in input order (a folder's in file-name order).

    Raises:
        ValueError: fewer than `min_images` images (e.g. an empty folder), a missing, corrupt or non-image
            file, or an image with a zero-sized side; the message names the item.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    items = _expand(images)
    if len(items) < min_images:
        raise ValueError(
            f"need at least {min_images} image(s), got {len(items)}"
            + (f" (no image files in {images})" if isinstance(images, (str, os.PathLike)) else "")
        )
    out = []
    for i, item in enumerate(items):
        try:
            image = load_image(item)
        except (ValueError, FileNotFoundError) as err:
            raise ValueError(f"image {i}: {err}") from None
        if min(image.size) == 0:
            raise ValueError(f"image {i}: has a zero-sized side {image.size}")
        out.append(fit_square(image, size))
    return out


def images_to_tensor(images: Sequence[Image.Image]) -> torch.Tensor:
    """Stack same-size RGB images as a float tensor in [-1, 1], the VAE's input range.

    Args:
        images: RGB images of one size (e.g. from `load_images`).

    Returns:
        Tensor of shape `[N, 3, H, W]`.
    """
    if not images:
        raise ValueError("no images to stack")
    array = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).div(127.5).sub(1.0).contiguous()
