"""Opening image files and arrays: full decode, clear errors naming the file, decompression-bomb guard."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .convert import to_rgb

ImageSource = str | os.PathLike | Image.Image | np.ndarray
# File endings every domain and the studio read as images (one list, so an upload the studio accepts is one a
# training reads too).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")


class UnreadableImageError(ValueError):
    """An image that cannot be loaded; the message names the file and what is wrong.

    Args:
        name: the file's path (or a description of the in-memory image).
        problem: what is wrong with it.
    """

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name} is not a readable image file ({problem})")
        self.name, self.problem = name, problem


def _problem(err: Exception) -> str:
    return str(err).strip() or f"{type(err).__name__} while decoding"


def _too_many_pixels(name: str, size: tuple[int, int] | None = None) -> UnreadableImageError:
    pixels = f"{size[0]}x{size[1]} is" if size else "it has"
    return UnreadableImageError(
        name,
        f"{pixels} more than PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS} pixels, as a "
        "decompression bomb would; make a trusted file smaller",
    )


def _decode(path: str | os.PathLike) -> Image.Image:
    """The fully decoded image of a file, so that a truncated or damaged file fails here, with its name."""
    name = str(path)
    if not Path(path).exists():
        raise FileNotFoundError(f"image file {name} does not exist")
    if not Path(path).is_file():
        raise UnreadableImageError(name, "not a file")
    if Path(path).stat().st_size == 0:
        raise UnreadableImageError(name, "an empty file")
    try:
        image = Image.open(path)
    except Image.DecompressionBombError:  # PIL's own guard, at twice its limit
        raise _too_many_pixels(name) from None
    except UnidentifiedImageError:
        raise UnreadableImageError(name, "not an image format PIL can read") from None
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, struct.error ... for broken files
        raise UnreadableImageError(name, _problem(err)) from None
    with image:
        limit = Image.MAX_IMAGE_PIXELS  # PIL only warns between its limit and twice it; None: no limit
        if limit and image.size[0] * image.size[1] > limit:
            raise _too_many_pixels(name, image.size)
        try:
            image.load()
        except Exception as err:
            raise UnreadableImageError(name, _problem(err)) from None
    return image


def check_image(path: str | os.PathLike) -> None:
    """Decode an image file completely, as `load_image` would, without keeping it.

    A file that passes loads without error later (`Image.verify()` passes many truncated JPEG/WEBP files).

    Args:
        path: the image file.

    Raises:
        FileNotFoundError: the file does not exist.
        UnreadableImageError: the file is not an image, is truncated or damaged, or has too many pixels.
    """
    _decode(path).close()


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise UnreadableImageError(
            "array", f"an array image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}"
        )
    return Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array)


def load_image(source: ImageSource) -> Image.Image:
    """Load an image as upright 8-bit RGB, by the rules of `to_rgb`; the one loader of every domain.

    Args:
        source: a file path, a PIL image (not modified), or an HxW / HxWxC array (uint8, uint16 or float).

    Returns:
        A fully decoded RGB PIL image.

    Raises:
        FileNotFoundError: a path that does not exist.
        UnreadableImageError: (a ValueError) an unreadable, truncated or damaged file, too many pixels, or
            an array of the wrong shape; the message names the file.
        ValueError: `source` is none of the above.
    """
    if isinstance(source, Image.Image):
        try:
            source.load()  # a lazily opened image decodes here, and fails with its name if it is damaged
        except Exception as err:
            name = getattr(source, "filename", "") or "image"
            raise UnreadableImageError(name, _problem(err)) from None
        return to_rgb(source)
    if isinstance(source, np.ndarray):
        return to_rgb(_from_array(source))
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(f"expected an image file path, a PIL image or an array, got {type(source).__name__}")
    image = _decode(source)
    try:
        return to_rgb(image)
    finally:
        image.close()
