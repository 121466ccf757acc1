"""ViT fine-tuning jobs: a bundled task or an uploaded ImageFolder, any timm backbone, any vision method."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

import vision
from studio.core import (
    atomic_path,
    inject,
    is_asset_name,
    method_configs,
    parameter_report,
    save_adapter,
    write_json,
)
from studio.world import digits_task, novel_concept_task, write_image_folder

from ..confusion import confusion_matrix, confusion_picture
from ..library import Entry

# Bundled tasks from the image world: label -> (builder, description).
BUNDLED_TASKS = {
    "novel-shapes": (
        lambda: novel_concept_task(shots=16, test_per_class=25),
        "4 shapes shapes-vit never saw",
    ),
    "digits": (lambda: digits_task(size=32), "scikit-learn's handwritten digits, 10 classes"),
}
SPLITS = ("train", "val", "test")
RESULT_FILE = "result.json"  # in the job folder: the split, classes and confusion matrix the tab shows
CONFUSION_PICTURE = "confusion.png"


def bundled_dataset(studio, name: str) -> Path:
    """The folder of bundled task `name` in the workspace (written once, then reused).

    Raises:
        ValueError: an unknown task name.
    """
    if name not in BUNDLED_TASKS:
        raise ValueError(f"unknown bundled task {name!r}; choose one of {', '.join(BUNDLED_TASKS)}")
    root = studio.workspace.inside("datasets", name)
    if not (root / "test").is_dir():
        task = BUNDLED_TASKS[name][0]()
        staging = studio.workspace.new_folder("tmp", name)
        for split in SPLITS:
            write_image_folder(getattr(task, split), task.classes, staging / split)
        staging.rename(root)
    return root


def dataset_splits(root: Path) -> tuple[Any, Any, Any]:
    """`(train, val, test)` of a dataset folder: its `train/`, `val/`, `test/` folders when present, else
    the folder itself as training data with every fifth image of each class held out for validation."""
    if (root / "train").is_dir():
        val = next((root / n for n in ("val", "valid", "validation") if (root / n).is_dir()), None)
        test = root / "test" if (root / "test").is_dir() else None
        return root / "train", val, test
    samples, classes = vision.scan_image_folder(root)
    train, val = [], []
    for i, (path, label) in enumerate(samples):
        (val if i % 5 == 4 else train).append((path, classes[label]))
    held_out = {label for _, label in val}
    if held_out != set(classes):  # a class too small to spare an image: validate on the training images
        val = [(p, classes[label]) for p, label in samples]
    return train, val, None


def pretrained_arg(model: str, weights: str) -> bool | str:
    """`vision.create_model`'s `pretrained` from the Weights box: empty = the model's own pretrained weights
    (bundled or timm's), `none` = random init, anything else = a local checkpoint file."""
    weights = (weights or "").strip()
    if not weights:
        return True
    if weights.lower() == "none":
        return False
    if is_asset_name(model):
        raise ValueError(f"{model!r} is a bundled model: leave Weights empty (or 'none' for random init)")
    return weights


def write_result(folder: Path, split: str, pairs: list[tuple[int, int]], classes: list[str]) -> None:
    """Write what the ViT tab shows after a run: `result.json` and the confusion matrix as a picture."""
    matrix = confusion_matrix(pairs, len(classes))
    with atomic_path(folder / CONFUSION_PICTURE) as tmp:
        confusion_picture(matrix, classes).save(tmp, format="PNG")
    write_json(folder / RESULT_FILE, {"split": split, "classes": classes, "confusion": matrix})


def read_result(folder: Path) -> dict[str, Any] | None:
    """The result a finished run wrote into its job folder (None before it is written)."""
    path = folder / RESULT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def run(studio, ctx) -> Path | None:
    """Fine-tune, evaluate and publish a ViT adapter (the job kind `"vit"`)."""
    p = ctx.params
    train, val, test = dataset_splits(studio.workspace.inside(p["data"]))
    classes = vision.scan_image_folder(train)[1] if isinstance(train, Path) else sorted({c for _, c in train})
    ctx.report(f"building {p['model']} with {p['method']} for {len(classes)} classes")
    torch.manual_seed(p.get("seed", 0))  # a random-init backbone is re-created identically on resume
    model = vision.create_model(
        p["model"], num_classes=len(classes), pretrained=pretrained_arg(p["model"], p.get("weights", ""))
    )
    inject(model, method_configs("vision")[p["method"]](**p["options"]))
    report = parameter_report(model)
    ctx.report(f"{report['trainable']:,} trainable parameters ({report['percent']:.2f}%); training")
    result = vision.finetune(
        model,
        train,
        val,
        epochs=int(p["epochs"]),
        lr=float(p["lr"]),
        batch_size=int(p["batch_size"]),
        output_dir=ctx.output_dir,
        checkpoint_every=25,
        resume=ctx.resume,
        callbacks=[ctx.callback],
        seed=p.get("seed", 0),
        progress=False,
    )
    if result.stopped:
        return None
    metrics = {
        f"val_{k}": v
        for k, v in (result.evals[-1] if result.evals else {}).items()
        if k not in ("n", "step", "epoch")
    }
    split, data = ("test", test) if test is not None else ("validation", val)
    if data is not None:
        ctx.report(f"evaluating on the {split} split")
        scores = vision.evaluate(model, data, classes=classes, progress=False, predictions=True)
        if split == "test":
            metrics.update({"test_accuracy": scores["accuracy"], "test_loss": scores["loss"]})
        write_result(ctx.folder, split, scores["predictions"], classes)
    metadata = {"classes": classes, "pretrained": p.get("weights") or None, "init_seed": p.get("seed", 0)}
    folder = save_adapter(model, ctx.output_dir / "adapter", metadata={**metadata, "metrics": metrics})
    entry = Entry(p["name"], "vision", p["method"], p["model"], metrics=metrics, job=ctx.job.id)
    entry.extra = {"classes": classes, "trainable": report["trainable"]}
    return studio.library.folder(studio.library.publish(folder, entry).name)
