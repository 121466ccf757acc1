"""Few-shot CLIP: accuracy of every method at 1/2/4/8/16 shots, fit times, and two cost ratios, in one run.

Tasks: `studio.world.novel_concept_task` (held-out shapes the model never saw) and `studio.world.digits_task`
(scikit-learn's handwritten digits). Accuracy is on each task's test split; hyperparameters are chosen on a
split of the support set only. Fit times start from cold features (memory-only cache, new classifier); test
features are encoded once per task and fed to each fitted head (what `predict` does).

Ratios measured in the same run, interleaved, medians, for each of `--ratio-models` (by default the bundled
model and open_clip's ViT-B-32 with random weights at its native 224 px, whose image tower is as costly as
a real CLIP's):
- Tip-Adapter fit time / one image-tower forward pass over the support set (target <= 1.2x with the default
  `augment_views=0`); with `--tip-views` (the paper's 10) augmented views, cold (1 + views passes by
  construction) and warm (every view served by the disk feature cache to a new classifier);
- one CoOp epoch re-encoding images every step / one epoch on cached features (target >= 10x).

    python benchmarks/vlm_fewshot.py                  # everything: accuracy of studio/shapes-clip, all ratios
    python benchmarks/vlm_fewshot.py --shots 1,4 --tasks novel --methods zero_shot,tip_adapter
    python benchmarks/vlm_fewshot.py --methods coop,coop:class_specific=true,tip_adapter:augment_views=10
    python benchmarks/vlm_fewshot.py --tasks "" --rounds 9                  # the cost ratios only
    python benchmarks/vlm_fewshot.py --tasks "" --ratio-models 'ViT-B-16:ratio_shots=2:ratio_tasks="novel"'
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

import studio.world as world
from studio.core import list_methods, method_names
from studio.world.transfer import SHIFTS, class_subset, shifted_shape_task
from vlm import FewShotCLIP, create_clip
from vlm.base import cosine_lr, frozen, step_threads, train_epochs
from vlm.coop import CoOpHead

TEMPLATES = ["a photo of a {}.", "a {}."]
DOMAIN_SHIFT = "blur"  # zero-shot 37% against 87% in the pretraining style (chance 14%)
# a real CLIP's architecture (random weights, nothing downloaded) on a small support set: 4 classes x 4 shots
BIG_MODEL = 'ViT-B-32:ratio_shots=4:ratio_tasks="novel":tip_views=0'
RATIO_OPTIONS = ("ratio_shots", "ratio_tasks", "rounds", "tip_views", "pretrained")  # settable per model


@functools.cache
def _full_task(name: str, seed: int) -> world.Task:
    if name == "novel":
        return world.novel_concept_task(shots=16, test_per_class=100, seed=seed)
    if name == "shapes":  # the pretraining shapes as the bundled CLIP saw them
        return world.shape_classification(16, 0, 100, seed=seed)
    if name in SHIFTS:
        return shifted_shape_task(name, shots=16, test_per_class=100, seed=seed)
    if name == "digits":
        return world.digits_task(seed=seed)  # built once: rendering all 1,797 digits takes a while
    sys.exit(f"unknown task {name!r}; tasks: novel, digits, shapes, {', '.join(SHIFTS)}")


def load_task(name: str, shots: int, test_per_class: int, seed: int) -> world.Task:
    """The task with the first `shots` training images of each class (nested: 1 shot ⊂ 2 shots ⊂ …) and
    the first `test_per_class * classes` test images."""
    task = _full_task(name, seed)
    picked, count = [], dict.fromkeys(range(len(task.classes)), 0)
    for image, label in task.train:
        if count[label] < shots:
            picked.append((image, label))
            count[label] += 1
    return world.Task(task.classes, picked, task.val, task.test[: test_per_class * len(task.classes)])


def timed(fn, clock=time.perf_counter) -> tuple[float, object]:
    """`(seconds, result)` of `fn()`, by `clock` (wall time by default)."""
    start = clock()
    result = fn()
    return clock() - start, result


def parse_spec(spec: str) -> tuple[str, dict]:
    """`"coop:class_specific=true:n_ctx=16"` -> `("coop", {"class_specific": True, "n_ctx": 16})`: a name,
    which may itself contain ":" (`hf-hub:org/repo`), then `key=JSON` options."""
    parts = spec.split(":")
    first = next((i for i, part in enumerate(parts) if "=" in part), len(parts))
    pairs = (part.partition("=") for part in parts[first:])
    return ":".join(parts[:first]), {key: json.loads(value) for key, _, value in pairs}


def forward_pass(base, images: list):
    """A function running one image-tower forward pass (with preprocessing) over `images`, in batches of 64."""
    model, preprocess, _ = base
    device = next(model.parameters()).device

    @torch.no_grad()
    def run() -> None:
        for start in range(0, len(images), 64):
            model.encode_image(torch.stack([preprocess(im) for im in images[start : start + 64]]).to(device))

    return run


def forward_seconds(base, images: list, rounds: int = 3) -> float:
    """Median CPU seconds (see `fitted`) of `forward_pass` over `images`, after one untimed pass."""
    run = forward_pass(base, images)
    run()
    return statistics.median(timed(run, time.process_time)[0] for _ in range(rounds))


def fitted(base, spec: str, task: world.Task, seed: int) -> tuple[FewShotCLIP, float]:
    """A classifier of method `spec` (`name:key=value:…`) fitted on `task.train` from cold features, and the
    CPU seconds of this process the fit took: unlike wall time, not stretched by other load on the machine
    (with `--threads 1` they are the work done)."""
    method, options = parse_spec(spec)
    clf = FewShotCLIP.from_model(
        *base, method=method, templates=TEMPLATES, cache_dir=False, seed=seed, **options
    )
    images, labels = zip(*task.train, strict=True)
    seconds, _ = timed(lambda: clf.fit(list(images), list(labels), task.classes), time.process_time)
    return clf, seconds


def test_accuracy(clf: FewShotCLIP, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy (%) of a fitted classifier on precomputed test features (what `predict` computes)."""
    with torch.no_grad():
        predicted = clf.head(features.to(clf.device)).argmax(-1).cpu()
    return 100 * (predicted == labels).float().mean().item()


def test_set(base, task: world.Task) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of a task's test split, encoded once."""
    images, labels = zip(*task.test, strict=True)
    encoder = FewShotCLIP.from_model(*base, method="zero_shot", cache_dir=False)
    return encoder.features.encode(list(images)), torch.tensor(labels)


def accuracy_table(base, args) -> None:
    """Accuracy (%) and fit time, as a ratio to one image-tower forward pass over the support set, per method,
    task and shot count, with the mean accuracy over shot counts."""
    shots_list = [int(s) for s in args.shots.split(",")]
    for task_name in filter(None, args.tasks.split(",")):
        tasks = {s: load_task(task_name, s, args.test_per_class, args.seed) for s in shots_list}
        test_features, test_labels = test_set(base, tasks[shots_list[0]])
        print(f"\n## {task_name}: test accuracy % (fit time / one forward pass over the support set)")
        print(
            f"{len(test_labels)} test images; CPU times, each forward pass timed just before the fit it divides"
        )
        print(f"| method | {' | '.join(f'{s} shot' for s in shots_list)} | mean |")
        print(f"|---|{'---|' * (len(shots_list) + 1)}")
        for spec in args.methods.split(","):
            cells, accuracies = [], []
            for shots in shots_list:
                # timed side by side, so that the load of a shared machine weighs on both alike
                forward = forward_seconds(base, [image for image, _ in tasks[shots].train])
                clf, seconds = fitted(base, spec, tasks[shots], args.seed)
                accuracies.append(test_accuracy(clf, test_features, test_labels))
                cells.append(f"{accuracies[-1]:.1f} ({seconds / forward:.1f}x)")
            print(f"| {spec} | {' | '.join(cells)} | {statistics.mean(accuracies):.1f} |", flush=True)


def harmonic_mean(a: float, b: float) -> float:
    """`2ab / (a + b)` (0 when both are 0)."""
    return 2 * a * b / (a + b) if a + b else 0.0


def base_to_new_table(base, args) -> None:
    """CoCoOp's protocol: fit on the first half of the classes (base), classify the test images of the other
    half (new) with the same learned parts, and of all classes; harmonic mean of base and new accuracy."""
    shots_list = [int(s) for s in args.shots.split(",")]
    task_name = args.base_to_new
    whole = load_task(task_name, max(shots_list), args.test_per_class, args.seed)
    half = (len(whole.classes) + 1) // 2  # the base half takes the odd class, as in CoCoOp's code
    groups = {"base": whole.classes[:half], "new": whole.classes[half:], "all": whole.classes}
    tests = {name: test_set(base, class_subset(whole, classes)) for name, classes in groups.items()}
    print(
        f"\n## base-to-new on {task_name}: fitted on {', '.join(groups['base'])}; new: {', '.join(groups['new'])}"
    )
    print("test accuracy % base / new / harmonic mean (all classes); methods that learn nothing per class")
    print(f"| method | {' | '.join(f'{s} shot' for s in shots_list)} |")
    print(f"|---|{'---|' * len(shots_list)}")
    for spec in args.transfer_methods.split(","):
        cells = []
        for shots in shots_list:
            task = class_subset(load_task(task_name, shots, args.test_per_class, args.seed), groups["base"])
            clf = fitted(base, spec, task, args.seed)[0]
            acc = {
                name: test_accuracy(clf.transfer(classes), *tests[name]) for name, classes in groups.items()
            }
            h = harmonic_mean(acc["base"], acc["new"])
            cells.append(f"{acc['base']:.1f} / {acc['new']:.1f} / **{h:.1f}** ({acc['all']:.1f})")
        print(f"| {spec} | {' | '.join(cells)} |", flush=True)


def tip_adapter_ratio(base, args, task: world.Task) -> float:
    """Tip-Adapter fit time against one forward pass of the image tower over the same support images; returns
    the default's ratio."""
    images, labels = (list(x) for x in zip(*task.train, strict=True))

    def fit(views: int, cache_dir) -> None:
        clf = FewShotCLIP.from_model(
            *base, method="tip_adapter", templates=TEMPLATES, cache_dir=cache_dir, augment_views=views
        )
        clf._text_cache = text_cache  # text features are not part of the comparison: both sides skip them
        clf.fit(images, labels, task.classes)

    text_cache = {}
    warm = FewShotCLIP.from_model(*base, method="zero_shot", templates=TEMPLATES, cache_dir=False)
    warm.fit([], [], task.classes)
    text_cache.update(warm._text_cache)
    views, default = args.tip_views, "tip_adapter, default (augment_views=0), cold"
    with tempfile.TemporaryDirectory() as disk:
        rows = {"forward pass": forward_pass(base, images), default: lambda: fit(0, False)}
        if views:
            fit(views, disk)  # fills the disk cache for the warm row
            rows[f"tip_adapter, augment_views={views}, cold"] = lambda: fit(views, False)
            rows[f"tip_adapter, augment_views={views}, warm disk cache"] = lambda: fit(views, disk)
        times = {name: [] for name in rows}
        for _ in range(args.rounds):  # interleaved so machine load hits all alike
            for name, fn in rows.items():
                times[name].append(timed(fn)[0])
    base_time = statistics.median(times["forward pass"])
    print(
        f"\n## Tip-Adapter fit vs one forward pass ({len(images)} support images, medians of {args.rounds})"
    )
    print("| | seconds | ratio |\n|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} | {statistics.median(values) / base_time:.2f}x |")
    print("target: default <= 1.2x")
    return statistics.median(times[default]) / base_time


def coop_epoch_ratio(base, args, task: world.Task) -> list[float]:
    """One CoOp epoch on cached features against one that runs the image tower on every batch (on
    preprocessed tensors; and, as the reference's data loader does, from the PIL images); returns the
    speed-ups of caching against both."""
    model, preprocess, _ = base
    images, labels = (list(x) for x in zip(*task.train, strict=True))
    clf = FewShotCLIP.from_model(*base, method="coop", templates=TEMPLATES, cache_dir=False, epochs=1)
    clf.fit(images, labels, task.classes)
    features = clf.features.encode(images).to(clf.device)
    pixels = torch.stack([preprocess(im) for im in images]).to(clf.device)
    targets = torch.tensor(labels, device=clf.device)

    @torch.no_grad()
    def encoded(batch: torch.Tensor) -> torch.Tensor:
        return F.normalize(model.encode_image(batch.to(clf.device)).float(), dim=-1)

    sources = {
        "cached features": lambda index: features[index],
        "re-encoding preprocessed tensors": lambda index: encoded(pixels[index]),
        "re-encoding PIL images (preprocess + tower)": lambda index: encoded(
            torch.stack([preprocess(images[i]) for i in index.tolist()])
        ),
    }

    def epoch(source, threads) -> tuple[float, float]:
        head = CoOpHead(clf._ctx, clf.config)
        optimizer = torch.optim.SGD([head.context], lr=0.002, momentum=0.9)
        in_source = [0.0]

        def image_features(index: torch.Tensor) -> torch.Tensor:
            seconds, result = timed(lambda: source(index))
            in_source[0] += seconds
            return result

        with frozen(model):
            seconds, _ = timed(
                lambda: train_epochs(
                    [head.context],
                    lambda index, _e: F.cross_entropy(head(image_features(index)), targets[index]),
                    len(targets),
                    optimizer=optimizer,
                    lr_at=cosine_lr(0.002, 1),
                    epochs=1,
                    batch_size=32,
                    seed=0,
                    threads=threads,
                )
            )
        return seconds, in_source[0]

    # the cached epoch runs with the thread count CoOp's fit picks; the re-encoding epochs run with
    # torch's count and with 1 thread, and the faster of the two is the baseline
    coop_threads = step_threads(CoOpHead(clf._ctx, clf.config).step_flops(), clf.device)
    counts = sorted({torch.get_num_threads(), 1})
    rows = {(name, coop_threads if name == "cached features" else n): source for name, source in sources.items()
            for n in ([coop_threads] if name == "cached features" else counts)}  # fmt: skip
    times = {key: [] for key in rows}
    for _ in range(args.rounds):
        for (name, threads), source in rows.items():
            times[(name, threads)].append(epoch(source, threads))
    medians = {
        key: tuple(statistics.median(column) for column in zip(*values, strict=True))
        for key, values in times.items()
    }
    cached = medians[("cached features", coop_threads)][0]
    print(
        f"\n## CoOp epoch ({len(images)} images, {len(task.classes)} classes, batch 32, medians of {args.rounds})"
    )
    print("| image features from | threads | epoch s | of which image features s | epoch / cached |")
    print("|---|---|---|---|---|")
    for (name, threads), (seconds, in_source) in medians.items():
        count = threads or torch.get_num_threads()
        print(f"| {name} | {count} | {seconds:.3f} | {in_source:.4f} | {seconds / cached:.1f}x |")
    speedups = []
    for name in list(sources)[1:]:
        best = min(seconds for (row, _), (seconds, _) in medians.items() if row == name)
        speedups.append(best / cached)
        print(f"speed-up of caching vs {name}: {speedups[-1]:.1f}x (target >= 10x)")
    return speedups


def load_base(name: str, pretrained, device: str):
    """`vlm.create_clip(name, pretrained)`, or exit with how to build a missing bundled model."""
    try:
        return create_clip(name, pretrained=pretrained, device=device)
    except FileNotFoundError as err:
        sys.exit(f"cannot load {name!r}: {err}\nbuild it with `python assets/recipes/shapes_clip.py`")


def cost_ratios(args) -> None:
    """Both cost ratios for every model of `--ratio-models` on its ratio tasks, then a summary table."""
    summary = []
    for spec in filter(None, args.ratio_models.split(",")):
        name, options = parse_spec(spec)
        unknown = set(options) - set(RATIO_OPTIONS)
        if unknown:
            sys.exit(f"--ratio-models {spec!r}: unknown options {sorted(unknown)}; known: {RATIO_OPTIONS}")
        pretrained = args.pretrained if name == args.model else None  # None: random open_clip weights
        model_args = argparse.Namespace(**{**vars(args), "pretrained": pretrained, **options})
        base = load_base(name, model_args.pretrained, args.device)
        size = "x".join(map(str, base[0].visual.image_size))
        weights = model_args.pretrained or ("bundled" if name.startswith("studio/") else "random")
        for task_name in filter(None, model_args.ratio_tasks.split(",")):
            task = load_task(task_name, model_args.ratio_shots, 1, args.seed)
            shots = f"{len(task.classes)} classes x {model_args.ratio_shots} shots"
            print(f"\n# cost ratios: {name} ({weights} weights), {size} px, {task_name} task, {shots}")
            tip = tip_adapter_ratio(base, model_args, task)
            coop = coop_epoch_ratio(base, model_args, task)
            summary.append((name, size, task_name, len(task.train), tip, *coop))
        del base  # free a large model before loading the next
    print("\n## cost ratios, all models (medians; targets: Tip-Adapter <= 1.2x, CoOp speed-up >= 10x)")
    columns = ["model", "px", "task", "support images", "Tip-Adapter fit / forward pass"]
    columns += ["CoOp epoch re-encoding tensors / cached", "CoOp epoch re-encoding PIL / cached"]
    print(f"| {' | '.join(columns)} |\n|{'---|' * len(columns)}")
    for name, size, task_name, count, tip, tensors, pil in summary:
        print(f"| {name} | {size} | {task_name} | {count} | {tip:.2f}x | {tensors:.1f}x | {pil:.1f}x |")


def main() -> None:
    """Parse the arguments, load the model, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="studio/shapes-clip", help="model of the accuracy table (any vlm.create_clip name)"
    )
    parser.add_argument(
        "--pretrained", default=None, help="pretrained tag or checkpoint of --model (see vlm.create_clip)"
    )
    parser.add_argument("--shots", default="1,2,4,8,16")
    parser.add_argument(
        "--methods",
        default=",".join(method_names("vlm", "fewshot")),
        help="comma-separated; options as method:key=value:…",
    )
    parser.add_argument(
        "--tasks",
        default=f"novel,digits,{DOMAIN_SHIFT}",
        help="novel, digits, shapes, or a shift: " + ", ".join(SHIFTS),
    )
    parser.add_argument(
        "--base-to-new",
        default=DOMAIN_SHIFT,
        help="task whose classes are split into base and new ('' skips)",
    )
    parser.add_argument(
        "--transfer-methods",
        default=",".join(
            m.name for m in list_methods("vlm", "fewshot") if m.spec.class_agnostic(m.config_cls())
        ),
        help="methods of the base-to-new table (those that learn nothing per class)",
    )
    parser.add_argument("--test-per-class", type=int, default=50)
    parser.add_argument(
        "--ratio-models",
        default=f"studio/shapes-clip,{BIG_MODEL}",
        help=f"comma-separated models timed for the cost ratios; `name:key=JSON` sets {', '.join(RATIO_OPTIONS)} "
        "for that model; open_clip architectures have random weights unless given pretrained or named by --model",
    )
    parser.add_argument(
        "--ratio-tasks", default="novel,digits", help="tasks whose support sets time the ratios"
    )
    parser.add_argument("--ratio-shots", type=int, default=16, help="shots per class for the two cost ratios")
    parser.add_argument(
        "--tip-views",
        type=int,
        default=10,
        help="augmented views of the Tip-Adapter rows; 0 skips those rows",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{args.device}, {torch.get_num_threads()} threads")
    cost_ratios(args)
    if args.tasks or args.base_to_new:
        print(f"\n# accuracy: {args.model} (pretrained={args.pretrained})")
        base = load_base(args.model, args.pretrained, args.device)
        accuracy_table(base, args)
        if args.base_to_new:
            base_to_new_table(base, args)


if __name__ == "__main__":
    main()
