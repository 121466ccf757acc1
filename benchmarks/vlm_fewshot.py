"""Few-shot CLIP: accuracy of every method at 1/2/4/8/16 shots, fit times, and two cost ratios, in one run.

Tasks: `studio.world.novel_concept_task` (held-out shapes the model never saw) and `studio.world.digits_task`
(scikit-learn's handwritten digits). Accuracy is on each task's test split; hyperparameters are chosen on a
split of the support set only. Fit times start from cold features (memory-only cache, new classifier).

Ratios measured in the same run:
- Tip-Adapter fit time / one image-tower forward pass over the support set (target <= 1.2x with
  `augment_views=0`; the default 10 augmented views cost about 11 passes by construction);
- one CoOp epoch re-encoding images every step / one epoch on cached features (target >= 10x).

    python benchmarks/vlm_fewshot.py                                  # studio/shapes-clip, everything
    python benchmarks/vlm_fewshot.py --shots 1,4 --tasks novel --methods zero_shot,tip_adapter
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import studio.world as world
from vlm.base import cosine_lr, train_epochs
from vlm.classifier import FewShotCLIP
from vlm.coop import CoOpHead, frozen
from vlm.methods import METHODS
from vlm.models import create_clip

TEMPLATES = ["a photo of a {}.", "a {}."]


def load_task(name: str, shots: int, test_per_class: int, seed: int) -> world.Task:
    """The task with `shots` training images per class (the digits' training split is subsampled)."""
    if name == "novel":
        return world.novel_concept_task(shots=shots, test_per_class=test_per_class, seed=seed)
    task = world.digits_task(seed=seed)
    picked, count = [], dict.fromkeys(range(len(task.classes)), 0)
    for image, label in task.train:
        if count[label] < shots:
            picked.append((image, label))
            count[label] += 1
    task.train = picked
    task.test = task.test[: test_per_class * len(task.classes)]
    return task


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def accuracy_table(base, args) -> None:
    """Accuracy (%) and fit time per method, task and shot count."""
    shots_list = [int(s) for s in args.shots.split(",")]
    for task_name in args.tasks.split(","):
        print(f"\n## {task_name}: test accuracy % (fit seconds)")
        print(f"| method | {' | '.join(f'{s} shot' for s in shots_list)} |")
        print(f"|---|{'---|' * len(shots_list)}")
        tasks = {s: load_task(task_name, s, args.test_per_class, args.seed) for s in shots_list}
        for method in args.methods.split(","):
            cells = []
            for shots in shots_list:
                task = tasks[shots]
                clf = FewShotCLIP.from_model(
                    *base, method=method, templates=TEMPLATES, cache_dir=False, seed=args.seed
                )
                images, labels = zip(*task.train, strict=True)
                start = time.perf_counter()
                clf.fit(list(images), list(labels), task.classes)
                seconds = time.perf_counter() - start
                test_images, test_labels = zip(*task.test, strict=True)
                predicted = clf.predict(list(test_images))
                correct = sum(p == task.classes[y] for p, y in zip(predicted, test_labels, strict=True))
                cells.append(f"{100 * correct / len(test_labels):.1f} ({seconds:.2f}s)")
            print(f"| {method} | {' | '.join(cells)} |", flush=True)


def tip_adapter_ratio(base, args, task: world.Task) -> None:
    """Tip-Adapter fit time against one forward pass of the image tower over the same support images."""
    model, preprocess, _ = base
    images, labels = (list(x) for x in zip(*task.train, strict=True))
    device = next(model.parameters()).device

    @torch.no_grad()
    def forward_pass() -> None:
        for start in range(0, len(images), 64):
            model.encode_image(torch.stack([preprocess(im) for im in images[start : start + 64]]).to(device))

    def fit(views: int) -> None:
        clf = FewShotCLIP.from_model(
            *base, method="tip_adapter", templates=TEMPLATES, cache_dir=False, augment_views=views
        )
        clf._text_cache = text_cache  # text features are not part of the comparison: both sides skip them
        clf.fit(images, labels, task.classes)

    text_cache = {}
    warm = FewShotCLIP.from_model(*base, method="zero_shot", templates=TEMPLATES, cache_dir=False)
    warm.fit([], [], task.classes)
    text_cache.update(warm._text_cache)
    rows = {"forward pass": [], "tip_adapter (augment_views=0)": [], "tip_adapter (augment_views=10)": []}
    for _ in range(args.rounds):  # interleaved so machine load hits all alike
        rows["forward pass"].append(timed(forward_pass)[0])
        rows["tip_adapter (augment_views=0)"].append(timed(lambda: fit(0))[0])
        rows["tip_adapter (augment_views=10)"].append(timed(lambda: fit(10))[0])
    base_time = statistics.median(rows["forward pass"])
    print(
        f"\n## Tip-Adapter fit vs one forward pass ({len(images)} support images, medians of {args.rounds})"
    )
    print("| | seconds | ratio |\n|---|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {statistics.median(values):.3f} | {statistics.median(values) / base_time:.2f}x |")
    print("target: augment_views=0 <= 1.2x")


def coop_epoch_ratio(base, args, task: world.Task) -> None:
    """One CoOp epoch on cached features against one that runs the image tower on every batch."""
    model, preprocess, _ = base
    images, labels = (list(x) for x in zip(*task.train, strict=True))
    clf = FewShotCLIP.from_model(*base, method="coop", templates=TEMPLATES, cache_dir=False, epochs=1)
    clf.fit(images, labels, task.classes)
    features = clf.features.encode(images).to(clf.device)
    pixels = torch.stack([preprocess(im) for im in images]).to(clf.device)
    targets = torch.tensor(labels, device=clf.device)

    def encoded(index: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return F.normalize(model.encode_image(pixels[index]).float(), dim=-1)

    def epoch(source) -> float:
        head = CoOpHead(clf._ctx, clf.config)
        optimizer = torch.optim.SGD([head.context], lr=0.002, momentum=0.9)
        with frozen(model):
            seconds, _ = timed(
                lambda: train_epochs(
                    [head.context],
                    lambda index, _e: F.cross_entropy(head(source(index)), targets[index]),
                    len(targets),
                    optimizer=optimizer,
                    lr_at=cosine_lr(0.002, 1),
                    epochs=1,
                    batch_size=32,
                    seed=0,
                )
            )
        return seconds

    cached, recomputed = [], []
    for _ in range(args.rounds):
        cached.append(epoch(lambda index: features[index]))
        recomputed.append(epoch(encoded))
    ratio = statistics.median(recomputed) / statistics.median(cached)
    print(f"\n## CoOp epoch ({len(images)} images, batch 32, medians of {args.rounds})")
    print(
        f"| cached features | {statistics.median(cached):.3f}s |\n| re-encoding images | {statistics.median(recomputed):.3f}s |"
    )
    print(f"speed-up of caching: {ratio:.1f}x (target >= 10x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="studio/shapes-clip", help="any vlm.create_clip name")
    parser.add_argument(
        "--pretrained", default=None, help="pretrained tag or checkpoint (see vlm.create_clip)"
    )
    parser.add_argument("--shots", default="1,2,4,8,16")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--tasks", default="novel,digits")
    parser.add_argument("--test-per-class", type=int, default=50)
    parser.add_argument("--ratio-shots", type=int, default=16, help="shots per class for the two cost ratios")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    try:
        base = create_clip(args.model, pretrained=args.pretrained, device=args.device)
    except FileNotFoundError as err:
        sys.exit(f"cannot load {args.model!r}: {err}\nbuild it with `python assets/recipes/shapes_clip.py`")
    print(f"model {args.model} on {args.device}")
    accuracy_table(base, args)
    ratio_task = load_task("novel", args.ratio_shots, 1, args.seed)
    tip_adapter_ratio(base, args, ratio_task)
    coop_epoch_ratio(base, args, ratio_task)


if __name__ == "__main__":
    main()
