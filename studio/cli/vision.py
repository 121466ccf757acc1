"""`studio vision ...`: fine-tune and evaluate timm ViTs with an adapter from the shell."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import vision
from studio.core import (
    inject,
    is_asset_name,
    load_adapter,
    parameter_report,
    read_adapter_config,
    save_adapter,
)

from .options import add_key_values, add_method_options, method_config


def add_parser(domains: argparse._SubParsersAction) -> None:
    """Register `studio vision` and its subcommands."""
    parser = domains.add_parser("vision", help="ViT fine-tuning: VPT, AdaptFormer, SSF and baselines")
    commands = parser.add_subparsers(dest="vision_command", metavar="COMMAND")

    fit = commands.add_parser(
        "finetune",
        help="train an adapter on an ImageFolder directory",
    )
    fit.add_argument("--model", default="vit_small_patch16_224", help="timm architecture")
    fit.add_argument(
        "--pretrained",
        default=None,
        help="local checkpoint file, or 'hub' for timm's weights (default: random init)",
    )
    add_key_values(
        fit,
        "--timm-arg",
        "extra timm.create_model argument that shapes the model, e.g. img_size=64 (allowed: "
        + ", ".join(sorted(vision.TIMM_ARGS))
        + ")",
    )
    add_method_options(fit, "vision", "finetune", default="ssf")
    fit.add_argument(
        "--data", required=True, help="ImageFolder directory (or one with train/ and val/ sub-folders)"
    )
    fit.add_argument("--val", default=None, help="validation ImageFolder directory")
    fit.add_argument("--out", required=True, help="output folder for the adapter and checkpoints")
    fit.add_argument("--epochs", type=int, default=10)
    fit.add_argument("--lr", type=float, default=1e-3)
    fit.add_argument("--batch-size", type=int, default=32)
    fit.add_argument("--optimizer", default="adamw", choices=["adamw", "sgd"])
    fit.add_argument("--weight-decay", type=float, default=0.0)
    fit.add_argument("--augment", action="store_true", help="timm's training augmentation")
    fit.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS")
    fit.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    fit.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    fit.add_argument("--skip-corrupt", action="store_true", help="warn about and skip unreadable images")
    fit.add_argument("--seed", type=int, default=0)
    fit.set_defaults(run=run_finetune)

    ev = commands.add_parser("eval", help="accuracy of a saved adapter on an ImageFolder directory")
    ev.add_argument("--adapter", required=True, help="folder written by `studio vision finetune`")
    ev.add_argument("--data", required=True, help="ImageFolder directory with the training classes")
    ev.add_argument(
        "--pretrained", default=None, help="the base checkpoint (default: the one recorded at training)"
    )
    ev.add_argument("--batch-size", type=int, default=64)
    ev.add_argument("--skip-corrupt", action="store_true")
    ev.set_defaults(run=run_eval)


def _split(data: Path, val: str | None) -> tuple[Path, Path | None]:
    if (data / "train").is_dir() and val is None:
        val_dir = next(
            (data / n for n in ("val", "valid", "validation", "test") if (data / n).is_dir()), None
        )
        return data / "train", val_dir
    return data, Path(val) if val else None


def _pretrained(value: str | None, model: str) -> bool | str:
    if value is None:
        return is_asset_name(model)
    return {"hub": True, "none": False}.get(value, value)


def run_finetune(args: argparse.Namespace) -> None:
    """`studio vision finetune`."""
    config = method_config(args, "vision")
    timm_args = vision.check_timm_args(dict(args.timm_arg))
    train_dir, val_dir = _split(Path(args.data), args.val)
    on_corrupt = "skip" if args.skip_corrupt else "error"
    _, classes = vision.scan_image_folder(train_dir, on_corrupt)
    torch.manual_seed(args.seed)  # a randomly initialised backbone is then re-created identically by `eval`
    model = vision.create_model(
        args.model, num_classes=len(classes), pretrained=_pretrained(args.pretrained, args.model), **timm_args
    )
    inject(model, config)
    report = parameter_report(model)
    print(
        f"{args.method}: {report['trainable']:,} trainable of {report['total']:,} parameters ({report['percent']:.2f}%)"
    )
    result = vision.finetune(
        model,
        train_dir,
        val_dir,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        augment=args.augment,
        on_corrupt=on_corrupt,
        output_dir=args.out,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        overwrite=args.overwrite,
        seed=args.seed,
    )
    metrics = result.evals[-1] if result.evals else {}
    metadata = {
        "classes": classes,
        "timm_args": timm_args,
        "pretrained": args.pretrained,
        "init_seed": args.seed,
        "metrics": metrics,
    }
    save_adapter(model, args.out, metadata=metadata)
    final = (
        f"val accuracy {metrics['accuracy']:.4f} on {metrics['n']} images"
        if metrics
        else "no validation data"
    )
    print(f"final: {final}; train loss {result.history[-1]['loss']:.4f}; adapter saved to {args.out}")


def run_eval(args: argparse.Namespace) -> None:
    """`studio vision eval`."""
    saved = read_adapter_config(args.adapter)
    meta = saved.get("metadata", {})
    if "classes" not in meta:
        raise ValueError(
            f"{args.adapter} records no class names; it was not written by `studio vision finetune`"
        )
    # The folder may come from anyone: only model-shape keywords reach timm (checkpoint_path would open any file).
    timm_args = vision.check_timm_args(
        meta.get("timm_args", {}), source=f"{args.adapter} (metadata timm_args)"
    )
    pretrained = args.pretrained or meta.get("pretrained")
    torch.manual_seed(meta.get("init_seed", 0))
    model = vision.create_model(
        saved["base_model"],
        num_classes=len(meta["classes"]),
        pretrained=_pretrained(pretrained, saved["base_model"]),
        **timm_args,
    )
    load_adapter(model, args.adapter)
    on_corrupt = "skip" if args.skip_corrupt else "error"
    metrics = vision.evaluate(
        model, args.data, classes=meta["classes"], batch_size=args.batch_size, on_corrupt=on_corrupt
    )
    print(f"accuracy {metrics['accuracy']:.4f} on {metrics['n']} images (loss {metrics['loss']:.4f})")
