"""Condition extractors: turn a raw photo into the control image a ControlNet or T2I-Adapter was trained on.

Every extractor returns an L-mode image with white (255) strokes or regions on black (0), the convention of
ControlNet's canny/scribble/segmentation conditions and of `studio.world`'s rendered conditions, so a model
trained on extracted conditions accepts hand-made ones too. The extractor and its parameters are recorded in
the artifact, so `generate` can apply the same one to a photo.

Example:
    >>> from diffusion.conditions import extract_condition
    >>> edges = extract_condition(photo, "canny", low_threshold=50, high_threshold=150)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from PIL import Image


def canny(image: Image.Image, low_threshold: int = 100, high_threshold: int = 200) -> Image.Image:
    """Canny edges (OpenCV), white on black.

    Args:
        image: the photo (any mode).
        low_threshold: hysteresis low threshold on the gradient magnitude (ControlNet's recipe uses 100).
        high_threshold: hysteresis high threshold (ControlNet's recipe uses 200).

    Returns:
        An L-mode edge map of the same size.

    Raises:
        ValueError: when a threshold is negative or `low_threshold > high_threshold`.
    """
    if low_threshold < 0 or high_threshold < 0 or low_threshold > high_threshold:
        raise ValueError(
            f"canny thresholds must satisfy 0 <= low <= high, got low={low_threshold}, high={high_threshold}"
        )
    gray = np.asarray(image.convert("L"))
    return Image.fromarray(cv2.Canny(gray, int(low_threshold), int(high_threshold)))


def grayscale(image: Image.Image) -> Image.Image:
    """The photo's luminance (a colourisation condition).

    Args:
        image: the photo (any mode).

    Returns:
        An L-mode image of the same size.
    """
    return image.convert("L")


def sketch(image: Image.Image, blur: int = 3, thickness: int = 2) -> Image.Image:
    """A rough line drawing: Canny edges of a blurred photo (thresholds from its median), thickened.

    Blurring first drops texture and noise so that mostly object outlines remain, and dilating gives strokes
    about as wide as a pen line, like a scribble condition.

    Args:
        image: the photo (any mode).
        blur: side of the Gaussian kernel in pixels (odd; 1 disables blurring).
        thickness: stroke width in pixels (1 keeps one-pixel edges).

    Returns:
        An L-mode image of the same size, white strokes on black.

    Raises:
        ValueError: for an even or non-positive `blur` or a non-positive `thickness`.
    """
    if blur < 1 or blur % 2 == 0:
        raise ValueError(f"sketch blur must be a positive odd kernel size, got {blur}")
    if thickness < 1:
        raise ValueError(f"sketch thickness must be >= 1, got {thickness}")
    gray = np.asarray(image.convert("L"))
    if blur > 1:
        gray = cv2.GaussianBlur(gray, (blur, blur), 0)
    median = float(np.median(gray))
    # The usual automatic thresholds: ±33 % around the median intensity.
    edges = cv2.Canny(gray, int(max(0, 0.67 * median)), int(min(255, 1.33 * median) or 1))
    if thickness > 1:
        edges = cv2.dilate(edges, np.ones((thickness, thickness), np.uint8))
    return Image.fromarray(edges)


def mask(image: Image.Image, border: int = 2) -> Image.Image:
    """Foreground mask: pixels that differ from the background colour, split by Otsu's threshold.

    The background colour is the median of the image border, which suits an object photographed on a plain
    backdrop (and the image world); holes inside the object stay black.

    Args:
        image: the photo (any mode).
        border: width in pixels of the frame the background colour is estimated from.

    Returns:
        An L-mode image, 255 on the object, 0 elsewhere.

    Raises:
        ValueError: when `border` is not positive or leaves no interior.
    """
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    height, width = rgb.shape[:2]
    if border < 1 or 2 * border >= min(height, width):
        raise ValueError(f"mask border must be in [1, {min(height, width) // 2 - 1}], got {border}")
    edges = (rgb[:border], rgb[-border:], rgb[:, :border], rgb[:, -border:])
    frame = np.concatenate([edge.reshape(-1, 3) for edge in edges])
    distance = np.linalg.norm(rgb - np.median(frame, axis=0), axis=-1)
    scaled = np.clip(distance * (255.0 / max(float(distance.max()), 1e-6)), 0, 255).astype(np.uint8)
    _, fg = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return Image.fromarray(fg)


CONDITIONS: dict[str, Callable[..., Image.Image]] = {
    "canny": canny,
    "grayscale": grayscale,
    "sketch": sketch,
    "mask": mask,
}


def extract_condition(image: Image.Image, condition: str, **params: Any) -> Image.Image:
    """Apply a named extractor to a photo.

    Args:
        image: the photo.
        condition: one of `CONDITIONS` (`"canny"`, `"grayscale"`, `"sketch"`, `"mask"`).
        **params: the extractor's parameters, e.g. `low_threshold=50` for canny.

    Returns:
        The condition image, L mode, same size as `image`.

    Raises:
        ValueError: for an unknown condition name or parameter.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; choose one of {sorted(CONDITIONS)}")
    try:
        return CONDITIONS[condition](image, **params)
    except TypeError as err:
        raise ValueError(f"bad parameters {params} for condition {condition!r}: {err}") from None
