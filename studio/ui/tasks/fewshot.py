"""Few-shot CLIP jobs: fit a `vlm.FewShotCLIP` on labelled uploads, publish it, classify with it."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import vlm

from ..library import Entry
from ..workspace import list_images

LANE = "fit"  # the job lane of few-shot fits: seconds long, so they do not queue behind trainings


def parse_classnames(text: str) -> list[str]:
    """Class names from a comma- or newline-separated list.

    Raises:
        ValueError: fewer than two names, or a duplicate.
    """
    names = [n.strip() for n in re.split(r"[,\n]", text or "") if n.strip()]
    if len(names) < 2:
        raise ValueError("type at least two class names, separated by commas (e.g. 'star, heart')")
    lowered = [n.lower() for n in names]
    if len(set(lowered)) != len(lowered):
        raise ValueError(f"class names repeat: {names}")
    return names


def label_of(path: Path, root: Path, classnames: list[str]) -> str:
    """The class of an uploaded image: its folder's name (zip uploads) or the class its file name starts with.

    Raises:
        ValueError: neither names a class.
    """
    by_lower = {n.lower(): n for n in classnames}
    for folder in reversed(path.relative_to(root).parts[:-1]):
        if folder.lower() in by_lower:
            return by_lower[folder.lower()]
    stem = path.stem.lower()
    matches = [n for n in by_lower if stem.startswith(n.replace(" ", "-")) or stem.startswith(n)]
    if matches:
        return by_lower[max(matches, key=len)]
    raise ValueError(
        f"cannot tell the class of {path.name}: name each file after its class (e.g. 'star_1.png') or put "
        f"the images in class folders inside a zip; classes: {', '.join(classnames)}"
    )


def labelled_images(folder: Path, classnames: list[str]) -> tuple[list[Path], list[str]]:
    """Every image under an upload folder with its class label."""
    images = list_images(folder)
    if not images:
        raise ValueError("the upload has no images")
    return images, [label_of(p, folder, classnames) for p in images]


def pretrained_arg(text: str) -> str | None:
    """`vlm.FewShotCLIP`'s `pretrained` from the Pretrained box: empty means the model's own weights."""
    return (text or "").strip() or None


def run(studio, ctx) -> Path:
    """Fit and publish a few-shot classifier (the job kind `"fewshot"`)."""
    p = ctx.params
    images, labels = labelled_images(studio.workspace.inside(p["data"]), p["classnames"])
    ctx.report(f"loading {p['model']}; fitting {p['method']} on {len(images)} images")
    clf = vlm.FewShotCLIP(
        p["model"], pretrained=pretrained_arg(p.get("pretrained", "")), method=p["method"], **p["options"]
    )
    clf.fit(images, labels, p["classnames"])
    out = clf.save(ctx.output_dir / "classifier")
    counts = {name: labels.count(name) for name in p["classnames"]}
    entry = Entry(p["name"], "vlm", p["method"], p["model"], job=ctx.job.id)
    entry.extra = {"classnames": p["classnames"], "shots": counts}
    ctx.queue.update(ctx.job, step=1, total_steps=1)
    return studio.library.folder(studio.library.publish(out, entry).name)


class ClassifierCache:
    """Loaded classifiers by library entry, so classifying a second image does not reload the model."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, float], vlm.FewShotCLIP] = {}

    def get(self, studio, name: str) -> vlm.FewShotCLIP:
        """The classifier of library entry `name` (loaded once per entry)."""
        entry = studio.library.get(name)
        if entry.domain != "vlm":
            raise ValueError(f"{name!r} is a {entry.domain} artifact, not a few-shot classifier")
        key = (name, entry.created)
        with self._lock:
            if key not in self._loaded:
                self._loaded = {key: vlm.FewShotCLIP.load(studio.library.path(name))}  # keep one
            return self._loaded[key]


def classify(studio, cache: ClassifierCache, name: str, image) -> dict[str, float]:
    """Class probabilities of one image (a PIL image or a path) under classifier `name`."""
    if image is None:
        raise ValueError("drop an image to classify")
    clf = cache.get(studio, name)
    probs = clf.predict_proba([image])[0]
    return {c: float(p) for c, p in zip(clf.classnames, probs, strict=True)}
