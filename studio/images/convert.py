"""One rule per kind of pixel data: any decoded PIL image becomes upright 8-bit RGB."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

WHITE = (255, 255, 255)
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def _deep_to_8bit(image: Image.Image) -> Image.Image:
    # PIL's own convert() clips 16-bit and float data to 255, which turns most such images white. Scale
    # by the bit depth instead, never by the image's own min/max: a dark picture stays dark.
    array = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        top = 1.0 if array.size and float(np.nanmax(array)) <= 1.0 else 255.0
        array = np.nan_to_num(array)
    else:  # "I;16", "I;16B", "I;16L", ... and "I": 16-bit samples
        top = 65535.0
    return Image.fromarray(np.round(np.clip(array / top * 255.0, 0, 255)).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image) -> Image.Image:
    """An upright 8-bit RGB copy of a decoded image, by one rule per case.

    - EXIF orientation is applied (`ImageOps.exif_transpose`).
    - 16-bit and 32-bit integer samples are scaled by the bit depth (value / 65535 * 255, so 32768 becomes 128);
      float samples are read as 0–1 when none exceeds 1, else as 0–255.
    - Transparent pixels (RGBA, LA, PA, palette with transparency) are composited on white.
    - Palette, CMYK, grayscale (L, 1) and other modes convert with PIL.

    Args:
        image: a loaded PIL image of any mode; it is not modified.

    Returns:
        A new RGB image.
    """
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I") or image.mode == "F":
        image = _deep_to_8bit(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (*WHITE, 255)), rgba)
    return image if image.mode == "RGB" else image.convert("RGB")
