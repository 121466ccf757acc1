"""Mini-VTAB-1k: every vision method on the nine `studio.world` tasks, beside the papers' VTAB-1k numbers.

VTAB-1k's protocol on each task (`studio.world.vtab_task`): for every method, train on 800 images with
each learning rate of a tiny grid and score the other 200; then train on all 1,000 with the best one
and report accuracy on the test set. Every run starts from the same backbone and the same fresh head
(seed 0), trains with AdamW, 10 % warmup and cosine decay, without augmentation. The linear probe trains
its head on cached features of the frozen backbone, which is exact without augmentation.

The papers' numbers (ViT-B/16 pretrained on ImageNet-21k, 100 epochs per task, 19 tasks) are printed
beside ours for the shape of the comparison only: the backbone, the tasks and the budget differ.

    python benchmarks/vision_vtab.py                   # studio/shapes-vit, all methods and tasks
    python benchmarks/vision_vtab.py --quick           # smoke run: 200 images per task, 2 epochs
    python benchmarks/vision_vtab.py --model vit_base_patch16_224 --pretrained weights.safetensors
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial

import torch
from torch.nn import functional as F
from torch.utils.data import TensorDataset

import vision
from studio.core import AdapterConfig, inject, write_json
from studio.engine import train
from studio.world import VTAB_GROUPS, VTAB_TASKS, vtab_task
from studio.world.vtab import VAL_FRACTION

BUNDLED = "studio/shapes-vit"

# method -> (config factory, learning-rate grid searched on the 800/200 split)
METHODS: dict[str, tuple[Callable[[], AdapterConfig], tuple[float, ...]]] = {
    "linear_probe": (vision.LinearProbeConfig, (1e-2, 3e-2)),
    "full": (vision.FullFinetuneConfig, (3e-4, 1e-3)),
    "bitfit": (vision.BitFitConfig, (3e-3, 1e-2)),
    "lora": (vision.LoRAConfig, (3e-3, 1e-2)),
    "vpt_shallow": (partial(vision.VPTConfig, deep=False), (3e-3, 1e-2)),
    "vpt_deep": (vision.VPTConfig, (3e-3, 1e-2)),
    "adaptformer": (vision.AdaptFormerConfig, (3e-3, 1e-2)),
    "ssf": (vision.SSFConfig, (3e-3, 1e-2)),
}

# VTAB-1k, ViT-B/16 pretrained on ImageNet-21k: group means (natural 7 tasks, specialized 4, structured 8)
# and the mean over the 19 tasks. Group means of linear probe, full, bias (BitFit) and VPT: the VPT paper
# (Jia et al., 2022), table 1. 19-task means: the SSF paper (Lian et al., 2022), table 1; the group means
# of SSF, LoRA and AdaptFormer are the means of their per-task numbers in that table.
PAPERS: dict[str, tuple[float, float, float, float]] = {
    "linear_probe": (68.9, 77.2, 26.8, 52.9),
    "full": (75.9, 83.4, 47.6, 65.6),
    "bitfit": (73.3, 78.3, 44.1, 62.1),
    "lora": (79.5, 84.6, 59.8, 72.3),
    "vpt_shallow": (76.8, 79.7, 47.0, 64.9),
    "vpt_deep": (78.5, 82.4, 55.0, 69.4),
    "adaptformer": (80.6, 84.9, 58.8, 72.3),
    "ssf": (81.6, 86.6, 59.0, 73.1),
}


@dataclass
class Settings:
    """What one benchmark run trains.

    Args:
        model: the backbone: `studio/shapes-vit` or a timm name.
        pretrained: weights of a timm backbone: True (timm's), False (random) or a local checkpoint path.
        train: training images per task (validation included, 1,000 in VTAB-1k).
        test: test images per task.
        epochs: passes over the training images, in the search and in the final run.
        batch_size: images per step.
        image_size: side of the rendered images; None renders at the backbone's input size.
    """

    model: str = BUNDLED
    pretrained: bool | str = True
    train: int = 1000
    test: int = 500
    epochs: int = 3
    batch_size: int = 32
    image_size: int | None = None


def build(settings: Settings, method: str, num_classes: int) -> torch.nn.Module:
    """The backbone with a fresh `num_classes` head (seed 0) and `method` injected."""
    torch.manual_seed(0)
    model = vision.create_model(settings.model, num_classes=num_classes, pretrained=settings.pretrained)
    return inject(model, METHODS[method][0]())


def finetune_accuracy(settings: Settings, method: str, task, lr: float, split: str) -> float:
    """Accuracy after training `method` at `lr`: on the 200 after the 800 (`"search"`), or on the test set
    after all 1,000 (`"final"`)."""
    train_pairs, eval_pairs = (
        (task.train, task.val) if split == "search" else (task.train + task.val, task.test)
    )
    model = build(settings, method, len(task.classes))
    vision.finetune(
        model,
        train_pairs,
        epochs=settings.epochs,
        lr=lr,
        batch_size=settings.batch_size,
        progress=False,
    )
    return vision.evaluate(model, eval_pairs, classes=task.classes, progress=False)["accuracy"]


@torch.inference_mode()
def features(model: torch.nn.Module, pairs) -> TensorDataset:
    """Pre-logit features of the frozen backbone and the labels of `pairs`."""
    model.eval()
    transform = vision.image_transform(model)
    chunks = []
    for start in range(0, len(pairs), 128):
        images = torch.stack([transform(image) for image, _ in pairs[start : start + 128]])
        chunks.append(model.forward_head(model.forward_features(images), pre_logits=True))
    return TensorDataset(torch.cat(chunks), torch.tensor([label for _, label in pairs]))


class LinearProbe:
    """The linear probe of one task on cached features: the head alone trains, on the same schedule."""

    def __init__(self, settings: Settings, task) -> None:
        self.settings = settings
        model = build(settings, "linear_probe", len(task.classes))
        self.head = model.get_classifier()
        all_train = features(model, task.train + task.val)
        n = len(task.train)
        self.splits = {
            "search": (TensorDataset(*all_train[:n]), TensorDataset(*all_train[n:])),
            "final": (all_train, features(model, task.test)),
        }

    def accuracy(self, lr: float, split: str) -> float:
        """Accuracy on the split's evaluation part after training a copy of the fresh head at `lr`."""
        train_set, eval_set = self.splits[split]
        head = copy.deepcopy(self.head)
        train(
            head,
            train_set,
            lambda model, batch: F.cross_entropy(model(batch[0]), batch[1]),
            batch_size=self.settings.batch_size,
            epochs=self.settings.epochs,
            lr=lr,
            warmup_steps=0.1,
            progress=False,
        )
        with torch.inference_mode():
            x, y = eval_set.tensors
            return (head(x).argmax(-1) == y).float().mean().item()


def run_task(settings: Settings, name: str, methods: list[str]) -> tuple[dict[str, dict[str, float]], float]:
    """VTAB-1k's protocol for every method on task `name`.

    Returns:
        `{method: {"lr": chosen, "val": its validation accuracy, "test": test accuracy}}` and the CPU
        seconds this process spent (a measure of the work that load on a shared machine does not inflate).
    """
    start, cpu = time.perf_counter(), time.process_time()
    size = settings.image_size or vision.data_config(build(settings, "linear_probe", 2))["input_size"][-1]
    task = vtab_task(name, train=settings.train, test=settings.test, size=size)
    results = {}
    for method in methods:
        if method == "linear_probe":
            score = LinearProbe(settings, task).accuracy
        else:
            score = partial(finetune_accuracy, settings, method, task)
        val = {lr: score(lr, "search") for lr in METHODS[method][1]}
        best = max(val, key=val.get)  # the first of equal scores: the grid's order breaks ties
        results[method] = {"lr": best, "val": val[best], "test": score(best, "final")}
    cpu = time.process_time() - cpu
    scores = ", ".join(f"{m} {r['test'] * 100:.1f}" for m, r in results.items())
    print(f"{name} ({time.perf_counter() - start:.0f} s, {cpu:.0f} CPU s): {scores}", flush=True)
    return results, cpu


def group_means(results: dict[str, dict[str, dict[str, float]]], method: str) -> dict[str, float]:
    """Mean test accuracy (%) of `method` over each group's tasks that ran, and over all of them."""
    means = {}
    for group, names in VTAB_GROUPS.items():
        scores = [results[n][method]["test"] * 100 for n in names if n in results]
        if scores:
            means[group] = statistics.mean(scores)
    means["mean"] = statistics.mean(results[n][method]["test"] * 100 for n in results)
    return means


def print_tables(results: dict[str, dict[str, dict[str, float]]], methods: list[str]) -> None:
    """Per-task test accuracy with the chosen learning rate, then group means beside the papers'."""
    tasks = list(results)
    print("\ntest accuracy (%), learning rate chosen on the 800/200 split in brackets")
    print(f"{'method':<14}" + "".join(f"{t:>22}" for t in tasks))
    for m in methods:
        cells = (f"{results[t][m]['test'] * 100:.1f} ({results[t][m]['lr']:.0e})" for t in tasks)
        print(f"{m:<14}" + "".join(f"{c:>22}" for c in cells))
    columns = ["natural", "specialized", "structured", "mean"]
    print(f"\n{'method':<14}" + "".join(f"{c:>13}" for c in columns) + "   | papers, ViT-B/16 VTAB-1k")
    for m in methods:
        ours = group_means(results, m)
        paper = "".join(f"{v:>8.1f}" for v in PAPERS[m])
        print(f"{m:<14}" + "".join(f"{ours.get(c, float('nan')):>13.1f}" for c in columns) + f"   | {paper}")


def parse_args() -> tuple[Settings, list[str], list[str], argparse.Namespace]:
    """The settings, methods and tasks from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=BUNDLED, help="studio/shapes-vit or a timm name")
    parser.add_argument(
        "--pretrained",
        default="true",
        help="for a timm name: true (timm's weights), false (random) or a local checkpoint path",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 images, 100 test, 2 epochs")
    parser.add_argument("--train", type=int, help="training images per task (default 1000)")
    parser.add_argument("--test", type=int, help="test images per task (default 500)")
    parser.add_argument("--epochs", type=int, help=f"epochs per run (default {Settings.epochs})")
    parser.add_argument("--image-size", type=int, help="rendered image side (default: the model's input)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset")
    parser.add_argument("--tasks", default=",".join(VTAB_TASKS), help="comma-separated subset")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="tasks run in parallel, one thread each (default 2: one per core of a 2-core CPU); "
        "0 runs them in this process with torch's default threads",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    methods, tasks = args.methods.split(","), args.tasks.split(",")
    for kind, chosen, known in (("method", methods, METHODS), ("task", tasks, VTAB_TASKS)):
        if unknown := [c for c in chosen if c not in known]:
            parser.error(f"unknown {kind} {unknown[0]!r}; choose from {','.join(known)}")
    pretrained = {"true": True, "false": False}.get(args.pretrained.lower(), args.pretrained)
    quick = {"train": 200, "test": 100, "epochs": 2} if args.quick else {}
    given = {k: getattr(args, k) for k in ("train", "test", "epochs") if getattr(args, k) is not None}
    settings = Settings(args.model, pretrained, image_size=args.image_size, **{**quick, **given})
    return settings, methods, tasks, args


def main() -> None:
    """Run the benchmark and print the tables."""
    settings, methods, tasks, args = parse_args()
    val = round(settings.train * VAL_FRACTION)
    print(
        f"mini-VTAB-1k on {settings.model}: {settings.train} training images per task "
        f"({settings.train - val}/{val} for the search), "
        f"{settings.test} test, {settings.epochs} epochs, "
        f"{f'{args.workers} single-thread workers' if args.workers else f'{torch.get_num_threads()} threads'}"
    )
    start = time.perf_counter()
    run = partial(run_task, settings, methods=methods)
    results, cpu = {}, 0.0
    # One thread per worker process: on a busy CPU, threads of one process wait on each other at every op.
    pool = (
        ProcessPoolExecutor(args.workers, initializer=torch.set_num_threads, initargs=(1,))
        if args.workers
        else None
    )
    with pool or contextlib.nullcontext():
        outcomes = pool.map(run, tasks) if pool else map(run, tasks)
        for name, (result, seconds) in zip(tasks, outcomes, strict=True):
            results[name], cpu = result, cpu + seconds
            if args.json:  # after every task, so that a stopped run keeps what it finished
                write_json(
                    args.json, {"settings": vars(settings), "cpu_minutes": cpu / 60, "results": results}
                )
    print_tables(results, methods)
    minutes = (time.perf_counter() - start) / 60
    print(f"\ntotal {minutes:.1f} min, {cpu / 60:.1f} CPU min in the tasks")
    if args.json:
        write_json(
            args.json,
            {"settings": vars(settings), "minutes": minutes, "cpu_minutes": cpu / 60, "results": results},
        )


if __name__ == "__main__":
    main()
