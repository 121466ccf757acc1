"""Reading a control dataset folder: images, their captions, and their condition images.

Layout (the Hugging Face `imagefolder` convention plus a `conditions/` folder):

```
data/pairs/
  house1.png  house1.txt            # a caption in a same-name .txt, or in metadata.jsonl
  house2.jpg
  metadata.jsonl                    # {"file_name": "house2.jpg", "text": "a red house"} per line
  conditions/house1.png             # condition images with the same stem (or "condition_file_name" in
  conditions/house2.png             #   metadata.jsonl); not needed when an extractor derives them
```
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from studio.images import load_image

from ..conditions import extract_condition
from ..images import fit_square, list_image_files, load_images

CONDITION_DIRS = ("conditions", "condition", "control")
METADATA = "metadata.jsonl"
CAPTION_KEYS = ("text", "caption", "prompt")
CONDITION_KEYS = ("condition_file_name", "conditioning_image", "condition")


@dataclass
class ControlExample:
    """One training pair.

    Args:
        image: the target image, RGB, `size × size`.
        caption: its caption ("" when none was given).
        condition: the condition image (RGB, same size as `image`), or None for methods that need none.
        name: the image's file name, for messages.
    """

    image: Image.Image
    caption: str
    condition: Image.Image | None
    name: str


def read_control_folder(
    folder: str | os.PathLike,
    size: int,
    condition: str | None = None,
    condition_params: dict[str, Any] | None = None,
    need_condition: bool = True,
) -> list[ControlExample]:
    """Read every image of `folder` with its caption and condition.

    Args:
        folder: the dataset folder (layout in this module's docstring).
        size: side length of the square training images (e.g. `pipeline_resolution(pipe)`); images are
            resized and centre-cropped to it (`diffusion.images.load_images`), conditions identically.
        condition: an extractor name (`"canny"`, `"sketch"`, `"grayscale"`, `"mask"`) that derives each
            condition from its image; None reads condition images from `conditions/` or metadata.jsonl.
        condition_params: the extractor's parameters (e.g. `{"low_threshold": 50}`).
        need_condition: whether every image needs a condition (ControlNet, T2I-Adapter) or none is read
            (IP-Adapter).

    Returns:
        The examples, sorted by file name.

    Raises:
        FileNotFoundError: when `folder` does not exist.
        ValueError: when the folder holds no image (or, with `need_condition` and no extractor, no image
            with a condition image), or metadata.jsonl is malformed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset folder {folder} does not exist")
    metadata = _read_metadata(folder)
    images = list_image_files(folder)
    use_files = need_condition and condition is None
    examples, uncaptioned, resized, unpaired = [], [], [], []
    for path in images:
        meta = metadata.get(path.name, {})
        cond = None
        if use_files:
            cond_path = _condition_path(folder, path, meta)
            if cond_path is None:
                unpaired.append(path.name)
                continue
            raw_image, raw_cond = (load_image(p) for p in (path, cond_path))
            image, cond = fit_square(raw_image, size), fit_square(raw_cond, size)
            if raw_cond.size != raw_image.size:
                # Resize to the image's own size first, so that the crop below cuts both alike.
                resized.append(f"{cond_path.name} {raw_cond.size}->{raw_image.size}")
                cond = fit_square(raw_cond.resize(raw_image.size, Image.Resampling.BICUBIC), size)
        else:
            (image,) = load_images([path], size)
        if need_condition and not use_files:
            cond = extract_condition(image, condition, **(condition_params or {})).convert("RGB")
        caption = _caption(path, meta)
        if caption is None:
            uncaptioned.append(path.name)
        examples.append(ControlExample(image, caption or "", cond, path.name))
    if not examples:
        raise ValueError(_nothing_found(folder, images, use_files))
    if uncaptioned:
        warnings.warn(
            f"{len(uncaptioned)} image(s) without a caption train with an empty one: {uncaptioned[:5]}",
            stacklevel=2,
        )
    if resized:
        warnings.warn(
            f"{len(resized)} condition image(s) of another size were resized: {resized[:5]}", stacklevel=2
        )
    if unpaired:
        warnings.warn(
            f"{len(unpaired)} image(s) without a condition image skipped: {unpaired[:5]}", stacklevel=2
        )
    return examples


def _read_metadata(folder: Path) -> dict[str, dict[str, Any]]:
    path = folder / METADATA
    if not path.is_file():
        return {}
    rows = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not a JSON object ({err.msg})") from None
        if not isinstance(row, dict) or "file_name" not in row:
            raise ValueError(f'{path}:{number}: every line needs a "file_name" key, got {line[:80]!r}')
        rows[Path(row["file_name"]).name] = row
    return rows


def _caption(path: Path, meta: dict[str, Any]) -> str | None:
    for key in CAPTION_KEYS:
        if isinstance(meta.get(key), str):
            return meta[key].strip()
    text = path.with_suffix(".txt")
    return text.read_text().strip() if text.is_file() else None


def _condition_path(folder: Path, image: Path, meta: dict[str, Any]) -> Path | None:
    for key in CONDITION_KEYS:
        if isinstance(meta.get(key), str):
            candidate = (folder / meta[key]).resolve()
            if not candidate.is_relative_to(folder.resolve()):
                raise ValueError(f"{METADATA}: condition {meta[key]!r} of {image.name} is outside {folder}")
            return candidate if candidate.is_file() else None
    for name in CONDITION_DIRS:
        if (folder / name).is_dir():
            for candidate in list_image_files(folder / name):
                if candidate.stem == image.stem:
                    return candidate
    return None


def _nothing_found(folder: Path, images: list[Path], use_files: bool) -> str:
    if not images:
        return (
            f"no training images in {folder}: expected image files (.png, .jpg, ...) with captions in a "
            "same-name .txt or metadata.jsonl"
        )
    return (
        f"none of the {len(images)} images in {folder} has a condition image: expected "
        f'{folder}/conditions/<same name> (or a "condition_file_name" in {METADATA}), or pass '
        "condition='canny' | 'sketch' | 'grayscale' | 'mask' to derive them from the images"
    )
