"""`studio vlm ...`: fit a few-shot CLIP classifier on an image folder and classify images from the shell."""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import vlm
from studio.core import method_names

from .options import add_method_options, method_config

CACHE_HELP = "image-feature cache folder (default: $STUDIO_CACHE/clip-features or ~/.cache/adaptation-studio)"


def add_parser(domains: argparse._SubParsersAction) -> None:
    """Register `studio vlm` and its subcommands."""
    methods = ", ".join(method_names("vlm", "fewshot"))
    parser = domains.add_parser("vlm", help=f"few-shot CLIP classifiers: {methods}")
    commands = parser.add_subparsers(dest="vlm_command", metavar="COMMAND")

    fit = commands.add_parser("fit", help="fit a classifier on an ImageFolder directory and save it")
    fit.add_argument(
        "--model",
        default="studio/shapes-clip",
        help="open_clip architecture, hf-hub:/local-dir: name or studio/...",
    )
    fit.add_argument(
        "--pretrained",
        default=None,
        help="open_clip pretrained tag or local checkpoint (default: the bundled weights for studio/..., "
        "random weights for an architecture name)",
    )
    fit.add_argument("--data", required=True, help="ImageFolder directory: DATA/<class name>/<images>")
    fit.add_argument(
        "--shots", type=int, default=None, help="images per class, drawn with --seed (default: all of them)"
    )
    fit.add_argument("--out", required=True, help="output folder of the classifier")
    fit.add_argument(
        "--templates", default="ensemble", help="ensemble, simple, single, or one template with '{}'"
    )
    add_method_options(fit, "vlm", "fewshot", default="tip_adapter")
    fit.add_argument("--device", default=None, help="cpu, cuda, … (default: cpu)")
    fit.add_argument("--cache-dir", default=None, help=CACHE_HELP)
    fit.add_argument("--seed", type=int, default=0)
    fit.set_defaults(run=run_fit)

    predict = commands.add_parser("predict", help="print the label and its probability for each image")
    predict.add_argument("--model-dir", required=True, help="folder written by `studio vlm fit`")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    predict.add_argument("--device", default=None)
    predict.add_argument("--cache-dir", default=None, help=CACHE_HELP)
    predict.set_defaults(run=run_predict)


def _support(data: str, shots: int | None, seed: int) -> tuple[list[Path], list[int], list[str]]:
    import vision  # imported when used: `studio --help` stays quick

    samples, classes = vision.scan_image_folder(data)
    if shots is not None and shots < 1:
        raise ValueError(f"--shots must be >= 1, got {shots}")
    by_class: dict[int, list[Path]] = {c: [] for c in range(len(classes))}
    for path, label in samples:
        by_class[label].append(path)
    rng = random.Random(seed)
    paths, labels = [], []
    for label, files in by_class.items():
        chosen = files if shots is None or shots >= len(files) else sorted(rng.sample(files, shots))
        paths += chosen
        labels += [label] * len(chosen)
    return paths, labels, classes


def _templates(value: str) -> str | list[str]:
    return [value] if "{}" in value else value


def run_fit(args: argparse.Namespace) -> None:
    """`studio vlm fit`."""
    config = method_config(args, "vlm")
    paths, labels, classes = _support(args.data, args.shots, args.seed)
    clf = vlm.FewShotCLIP(
        args.model,
        pretrained=args.pretrained,
        templates=_templates(args.templates),
        device=args.device,
        cache_dir=args.cache_dir,
        seed=args.seed,
        config=config,
    )
    start = time.perf_counter()
    clf.fit(paths, labels, classes)
    seconds = time.perf_counter() - start
    clf.save(args.out)
    chosen = ", ".join(f"{k}={v}" for k, v in clf.head.hparams.items())
    print(
        f"{args.method}: {len(classes)} classes, {len(paths)} images, fitted in {seconds:.1f}s"
        + (f" ({chosen})" if chosen else "")
    )
    print(f"saved to {args.out}")


def run_predict(args: argparse.Namespace) -> None:
    """`studio vlm predict`: one line per image, `path<TAB>label<TAB>probability`."""
    clf = vlm.FewShotCLIP.load(args.model_dir, device=args.device, cache_dir=args.cache_dir)
    proba = clf.predict_proba(args.images)
    for path, row in zip(args.images, proba, strict=True):
        best = int(row.argmax())
        print(f"{path}\t{clf.classnames[best]}\t{row[best]:.4f}")
