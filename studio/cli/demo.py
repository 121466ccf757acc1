"""`studio demo`: the end-to-end example, offline and CPU-sized.

It writes the image world's novel-shape task (shapes the bundled ViT never saw) as ImageFolder
directories, adapts the bundled `studio/shapes-vit` to it with a PEFT method, and evaluates the saved adapter.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from studio.world import novel_concept_task, write_image_folder


def add_parser(domains: argparse._SubParsersAction) -> None:
    """Register `studio demo`."""
    parser = domains.add_parser("demo", help="adapt the bundled ViT to unseen shapes and evaluate it")
    parser.add_argument("--out", default="runs/demo", help="folder for the dataset and the adapter")
    parser.add_argument("--method", default="ssf", help="adaptation method (see `studio vision finetune -h`)")
    parser.add_argument("--shots", type=int, default=16, help="training images per class")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> None:
    """Write the task (once), then run `studio vision finetune` and `studio vision eval` on it."""
    from . import main

    data = Path(args.out) / f"novel-shapes-{args.shots}shot"
    if not (data / "test").is_dir():
        task = novel_concept_task(shots=args.shots)
        for split in ("train", "val", "test"):
            write_image_folder(getattr(task, split), task.classes, data / split)
        print(f"wrote {len(task.classes)} unseen shapes ({', '.join(task.classes)}) to {data}")
    adapter = Path(args.out) / args.method
    commands = [
        ["vision", "finetune", "--model", "studio/shapes-vit", "--method", args.method, "--data", str(data / "train"),
         "--val", str(data / "val"), "--out", str(adapter), "--epochs", str(args.epochs), "--lr", str(args.lr),
         "--batch-size", "16"],
        ["vision", "eval", "--adapter", str(adapter), "--data", str(data / "test")],
    ]  # fmt: skip
    for command in commands:
        print("$ studio " + shlex.join(command))
        if main(command):
            raise ValueError(f"the demo step `studio {command[0]} {command[1]}` failed (see above)")
