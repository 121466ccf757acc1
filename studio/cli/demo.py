"""`studio demo`: the end-to-end example, on a small shapes dataset it draws itself (offline, CPU-sized)."""

from __future__ import annotations

import argparse
import random
import shlex
from pathlib import Path

from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")


def draw_shape(shape: str, rng: random.Random, size: int = 64) -> Image.Image:
    """One image of `shape` with random colour, size, position and a noisy background."""
    background = tuple(rng.randint(0, 90) for _ in range(3))
    image = Image.effect_noise((size, size), rng.randint(10, 40)).convert("RGB")
    image = Image.blend(image, Image.new("RGB", (size, size), background), 0.6)
    draw = ImageDraw.Draw(image)
    radius = rng.randint(size // 6, size // 3)
    cx, cy = (rng.randint(radius, size - radius) for _ in range(2))
    colour = tuple(rng.randint(120, 255) for _ in range(3))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour)
    return image


def make_shapes_dataset(root: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """Write `root/<split>/<shape>/<i>.png` for each split in `per_class` (deterministic for a seed)."""
    rng = random.Random(seed)
    for split, count in per_class.items():
        for shape in SHAPES:
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                draw_shape(shape, rng).save(folder / f"{i:03d}.png")
    return root


def add_parser(domains: argparse._SubParsersAction) -> None:
    """Register `studio demo`."""
    parser = domains.add_parser("demo", help="draw a small shapes dataset and fine-tune a ViT on it with SSF")
    parser.add_argument("--out", default="runs/demo", help="folder for the dataset and the adapter")
    parser.add_argument("--method", default="ssf", help="adaptation method (see `studio vision finetune -h`)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> None:
    """Make the dataset (once), then run `studio vision finetune` and `studio vision eval` on it."""
    from . import main

    out = Path(args.out)
    data = out / "shapes"
    if not (data / "test").is_dir():
        make_shapes_dataset(data, {"train": 64, "val": 32, "test": 32})
        print(f"drew {len(SHAPES)} classes of shapes into {data}")
    finetune = [
        "vision", "finetune", "--model", "vit_small_patch16_224", "--timm-arg", "img_size=64",
        "--timm-arg", "patch_size=8", "--timm-arg", "depth=4", "--timm-arg", "embed_dim=96", "--timm-arg", "num_heads=3",
        "--method", args.method, "--data", str(data / "train"), "--val", str(data / "val"),
        "--out", str(out / args.method), "--epochs", str(args.epochs), "--lr", "3e-3", "--batch-size", "32",
    ]  # fmt: skip
    print("$ studio " + shlex.join(finetune))
    if main(finetune):
        raise ValueError("the demo's fine-tuning failed (see above)")
    evaluate = ["vision", "eval", "--adapter", str(out / args.method), "--data", str(data / "test")]
    print("$ studio " + shlex.join(evaluate))
    if main(evaluate):
        raise ValueError("the demo's evaluation failed (see above)")
