"""`studio vlm ...`: fit a few-shot CLIP classifier on an image folder and classify images from the shell."""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from .options import add_key_values

CACHE_HELP = "image-feature cache folder (default: $STUDIO_CACHE/clip-features or ~/.cache/adaptation-studio)"


def add_parser(domains: argparse._SubParsersAction) -> None:
    """Register `studio vlm` and its subcommands."""
    parser = domains.add_parser("vlm", help="few-shot CLIP: zero-shot, linear probe, CoOp, Tip-Adapter(-F)")
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
    fit.add_argument(
        "--method",
        default="tip_adapter",
        help="zero_shot, linear_probe, coop, tip_adapter (default) or tip_adapter_f",
    )
    fit.add_argument("--data", required=True, help="ImageFolder directory: DATA/<class name>/<images>")
    fit.add_argument(
        "--shots", type=int, default=None, help="images per class, drawn with --seed (default: all of them)"
    )
    fit.add_argument("--out", required=True, help="output folder of the classifier")
    fit.add_argument(
        "--templates", default="ensemble", help="ensemble, simple, single, or one template with '{}'"
    )
    add_key_values(fit, "--set", "method option, e.g. n_ctx=16 or augment_views=10")
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
    import vlm

    paths, labels, classes = _support(args.data, args.shots, args.seed)
    clf = vlm.FewShotCLIP(
        args.model,
        pretrained=args.pretrained,
        method=args.method,
        templates=_templates(args.templates),
        device=args.device,
        cache_dir=args.cache_dir,
        seed=args.seed,
        **dict(args.set),
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
    import vlm

    clf = vlm.FewShotCLIP.load(args.model_dir, device=args.device, cache_dir=args.cache_dir)
    proba = clf.predict_proba(args.images)
    for path, row in zip(args.images, proba, strict=True):
        best = int(row.argmax())
        print(f"{path}\t{clf.classnames[best]}\t{row[best]:.4f}")
