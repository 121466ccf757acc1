"""Image classification data: an ImageFolder directory or a list of (image, label) pairs."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from studio.images import IMAGE_SUFFIXES, UnreadableImageError, check_image, load_image

ImageLike = Image.Image | str | os.PathLike
# One message for every user: a Python caller, a CLI user and a studio user each find their own option.
SKIP_HINT = "remove the file, or leave unreadable images out (Python: on_corrupt='skip', CLI: --skip-corrupt)"


def scan_image_folder(
    root: str | os.PathLike, on_corrupt: str = "error"
) -> tuple[list[tuple[Path, int]], list[str]]:
    """Samples and class names of an ImageFolder directory (`root/<class>/<image>`).

    Args:
        root: the directory; classes are its sub-folders, sorted by name.
        on_corrupt: `"error"` stops at the first unreadable image (naming it); `"skip"` warns and leaves it out.

    Raises:
        ValueError: no class folders, a class folder without images, or (with "error") a corrupt image.
    """
    if on_corrupt not in ("error", "skip"):
        raise ValueError(f"on_corrupt must be 'error' or 'skip', got {on_corrupt!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{root} has no class sub-folders; expected {root}/<class name>/<image files>")
    samples = []
    for index, name in enumerate(classes):
        files = sorted(
            p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        kept = 0
        for file in files:
            try:
                check_image(file)  # a full decode: a file that passes here loads in training too
            except UnreadableImageError as err:
                if on_corrupt == "error":
                    raise ValueError(f"corrupt image {err.name} ({err.problem}); {SKIP_HINT}") from None
                warnings.warn(f"skipping corrupt image {err.name} ({err.problem})", stacklevel=2)
                continue
            samples.append((file, index))
            kept += 1
        if kept == 0:
            raise ValueError(
                f"class folder {root / name} has no readable images ({', '.join(IMAGE_SUFFIXES)})"
            )
    return samples, classes


class ImageDataset(Dataset):
    """`(transform(image), label)` for a list of `(image or path, class index)` samples.

    Args:
        samples: pairs of a PIL image or a path, and a class index.
        classes: class names, by index.
        transform: applied to the RGB PIL image.
    """

    def __init__(
        self, samples: Sequence[tuple[ImageLike, int]], classes: Sequence[str], transform: Callable
    ) -> None:
        self.samples, self.classes, self.transform = list(samples), list(classes), transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, label = self.samples[index]
        return self.transform(load_image(image)), label


def as_dataset(
    data: str | os.PathLike | Sequence[tuple[ImageLike, Any]],
    transform: Callable,
    classes: Sequence[str] | None = None,
    on_corrupt: str = "error",
) -> ImageDataset:
    """Turn a folder or a list of `(image, label)` into an `ImageDataset`.

    Args:
        data: an ImageFolder directory, or pairs of (PIL image or path, label); labels are class indices
            or class names.
        transform: the model's input transform.
        classes: class names in label order; for folders they must equal the folder's classes; for lists
            of named labels they fix the order (default: sorted names).
        on_corrupt: see `scan_image_folder`.
    """
    if isinstance(data, (str, os.PathLike)):
        samples, found = scan_image_folder(data, on_corrupt)
        if classes is not None and list(classes) != found:
            raise ValueError(f"{data} has classes {found}, but the model was trained on {list(classes)}")
        return ImageDataset(samples, found, transform)
    pairs = list(data)
    if not pairs:
        raise ValueError("the data is empty: expected (image, label) pairs")
    labels = [label for _, label in pairs]
    if all(isinstance(label, str) for label in labels):
        names = list(classes) if classes is not None else sorted(set(labels))
        unknown = sorted(set(labels) - set(names))
        if unknown:
            raise ValueError(f"labels {unknown} are not among the classes {names}")
        pairs = [(image, names.index(label)) for image, label in pairs]
    else:
        bad = [label for label in labels if not isinstance(label, (int, np.integer)) or label < 0]
        if bad:
            raise ValueError(f"labels must be class names or non-negative class indices, got {bad[0]!r}")
        names = list(classes) if classes is not None else [str(i) for i in range(max(labels) + 1)]
    return ImageDataset([(image, int(label)) for image, label in pairs], names, transform)
