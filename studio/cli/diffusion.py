"""`studio diffusion ...`: personalize a text-to-image pipeline and sample from it with trained artifacts."""

from __future__ import annotations

import argparse
from pathlib import Path

import diffusion
from diffusion.conditions import CONDITIONS
from diffusion.generate import check_size_conditioning
from diffusion.memory import FROZEN_DTYPES, GPU_MEMORY_CHOICES, OPTIMIZERS, MemoryOptions
from diffusion.personalize import method_options
from studio.core import method_names

from .options import add_key_values, add_method_options, finite_float, int_in, method_config


def _model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="studio/shapes-sd",
        help="base pipeline (SD 1.x/2.x or SDXL): studio/shapes-sd, a diffusers folder, a .safetensors file or a hub id",
    )
    parser.add_argument("--device", default=None, help="e.g. cuda (default: CPU)")


def _load(args: argparse.Namespace):
    return diffusion.load_pipeline(args.model, device=args.device, disable_progress_bar=True)


def _personalize(args: argparse.Namespace) -> None:
    config = method_config(args, "diffusion")  # a bad --set option is refused before the model loads
    concepts = [{"token": t, "class_word": w or None, "images": i} for t, w, i in args.concept]
    method_options(args.method, config, {"concepts": concepts})  # as is one the concepts cannot train with
    run = _run_kwargs(args)
    art = diffusion.personalize(
        _load(args),
        args.images,
        method=args.method,
        token=args.token,
        class_word=args.class_word,
        config=config,
        steps=args.steps,
        batch_size=args.batch_size,
        prior_preservation=args.prior_preservation,
        class_images=_class_images(args.class_images, args.class_word),
        concepts=concepts,
        **run,
    )
    print(f"artifact: {art}")


def _class_images(values: list[str], class_word: str | None) -> str | dict[str | None, str] | None:
    """`--class-images` values as `ConceptRun.class_images`: a plain FOLDER is the first concept's class
    (`class_word`), `CLASS_WORD=FOLDER` any concept's.

    Raises:
        ValueError: more than one plain FOLDER.
    """
    plain = [v for v in values if "=" not in v]
    if len(plain) > 1:
        raise ValueError(
            "--class-images: one plain FOLDER (the first concept's class); CLASS_WORD=FOLDER for others"
        )
    given: dict[str | None, str] = dict(v.split("=", 1) for v in values if "=" in v)
    if plain and not given:
        return plain[0]
    if plain:
        given[class_word] = plain[0]
    return given or None


def _generate(args: argparse.Namespace) -> None:
    pipe = _load(args)
    sizes = {key: tuple(getattr(args, key)) for key in SIZE_OPTIONS if getattr(args, key) is not None}
    check_size_conditioning(pipe, sizes, {key: f"--{key.replace('_', '-')}" for key in SIZE_OPTIONS})
    images = diffusion.generate(
        pipe,
        args.prompt,
        adapters=args.adapter,
        negative_prompt=args.negative_prompt,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance_scale,
        seed=args.seed,
        num_images=args.num_images,
        scheduler=args.scheduler,
        control_image=args.control_image,
        ip_image=args.ip_image,
        height=args.height,
        width=args.width,
        **sizes,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        path = out / f"seed{args.seed}-{i}.png"
        image.save(path)
        print(path)


SIZE_OPTIONS = {
    "original_size": ("H", "W", 1, "the size the model is told the source image had; small ones look "
                      "upscaled (default: the output size)"),
    "crops_coords_top_left": ("TOP", "LEFT", 0, "the corner the model is told the image was cropped at; 0 0 "
                              "looks centred (the default)"),
    "target_size": ("H", "W", 1, "the size the model is told the image is made for (default: the output size)"),
}  # fmt: skip
"""SDXL's size conditioning (diffusers' `original_size`, ...): metavars, least value, help."""


def _run_options(parser: argparse.ArgumentParser) -> None:
    """The options every training command shares: output folder, resume, checkpoints, previews, seed."""
    parser.add_argument("--out", required=True, help="artifact folder (checkpoints and previews go inside)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    parser.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    parser.add_argument("--checkpoint-every", type=int, default=None)
    parser.add_argument("--preview-every", type=int, default=None, help="write preview samples every N steps")
    parser.add_argument("--seed", type=int, default=0)
    memory = parser.add_argument_group("GPU memory (options not given follow --gpu-memory)")
    memory.add_argument(
        "--gpu-memory",
        default="auto",
        choices=GPU_MEMORY_CHOICES,
        help="GB to fit in: turns on what that needs (auto: by the GPU; none: nothing)",
    )
    memory.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None)
    memory.add_argument("--optimizer", default=None, choices=OPTIMIZERS, help="adamw8bit needs bitsandbytes")
    memory.add_argument(
        "--offload", action=argparse.BooleanOptionalAction, default=None, help="VAE/text encoders off the GPU"
    )
    memory.add_argument(
        "--frozen-dtype", default="train", choices=FROZEN_DTYPES, help="frozen weights in the training dtype"
    )


def _run_kwargs(args: argparse.Namespace) -> dict:
    """The training API's arguments for the options `_run_options` added.

    Raises:
        ValueError: memory options that cannot be had (the 8-bit AdamW without bitsandbytes).
    """
    memory = MemoryOptions(
        gpu_memory=args.gpu_memory,
        frozen_dtype=args.frozen_dtype,
        gradient_checkpointing=args.gradient_checkpointing,
        optimizer=args.optimizer,
        offload=args.offload,
    )
    return {
        "memory": memory,
        "output_dir": args.out,
        "resume": args.resume,
        "overwrite": args.overwrite,
        "checkpoint_every": args.checkpoint_every,
        "preview_every": args.preview_every,
        "seed": args.seed,
    }


def _train_control(args: argparse.Namespace) -> None:
    config = method_config(args, "diffusion")  # a bad --set fails before the pipeline loads
    run = _run_kwargs(args)
    art = diffusion.train_control(
        _load(args),
        args.data,
        method=args.method,
        condition=args.condition,
        condition_params=dict(args.condition_param),
        steps=args.steps,
        config=config,
        image_encoder=args.image_encoder,
        batch_size=args.batch_size,
        **run,
    )
    print(f"artifact: {art}")


def _add_train_control(commands: argparse._SubParsersAction) -> None:
    fit = commands.add_parser(
        "train-control", help="train a ControlNet, T2I-Adapter or IP-Adapter on a folder of images"
    )
    _model(fit)
    fit.add_argument("--data", required=True, help="images + captions (+ conditions/ for control methods)")
    add_method_options(fit, "diffusion", "control", default="controlnet")
    fit.add_argument(
        "--condition", default=None, choices=sorted(CONDITIONS), help="derive conditions from the images"
    )
    add_key_values(fit, "--condition-param", "extractor option, e.g. low_threshold=50")
    fit.add_argument(
        "--image-encoder", default=None, help="IP-Adapter's CLIP image tower (default: studio/shapes-clip)"
    )
    fit.add_argument("--steps", type=int, default=1000)
    fit.add_argument("--batch-size", type=int, default=4)
    _run_options(fit)
    fit.set_defaults(run=_train_control)


def _export_unet(args: argparse.Namespace) -> None:
    print(diffusion.export_merged_unet(_load(args), args.adapter, args.out))


def _export_merged(args: argparse.Namespace) -> None:
    for name in diffusion.export_merged_components(_load(args), args.adapter, args.out):
        print(Path(args.out) / name)


def _add_export(commands: argparse._SubParsersAction, name: str, help: str, run) -> None:
    export = commands.add_parser(name, help=help)
    _model(export)
    export.add_argument("--adapter", required=True, help="the artifact (folder or file)")
    export.add_argument("--out", required=True)
    export.set_defaults(run=run)


def add_parser(domains: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Register `studio diffusion` and its subcommands.

    Args:
        domains: the top-level subparsers.

    Returns:
        The `studio diffusion` subparsers, so other diffusion commands (e.g. `train-control`) can join them.
    """
    parser = domains.add_parser("diffusion", help="text-to-image personalization and sampling")
    commands = parser.add_subparsers(dest="diffusion_command", metavar="COMMAND")

    methods = ", ".join(method_names("diffusion", "personalize"))
    fit = commands.add_parser("personalize", help=f"teach a concept from a few images ({methods})")
    _model(fit)
    add_method_options(fit, "diffusion", "personalize", default="textual_inversion")
    fit.add_argument("--images", required=True, help="folder (or file) of the concept's images")
    fit.add_argument("--token", required=True, help="placeholder token used in prompts, e.g. '<my-cat>'")
    fit.add_argument(
        "--class-word",
        default=None,
        help="the concept's class, e.g. cat (in the prompts or as the starting word, by method); needed for "
        "--prior-preservation",
    )
    fit.add_argument(
        "--concept",
        nargs=3,
        action="append",
        default=[],
        metavar=("TOKEN", "CLASS_WORD", "IMAGES"),
        help="one more concept learnt in the same run, with its own token (repeatable; CLASS_WORD may be ''): "
        "svdiff, lora, difffit and custom_diffusion train several concepts jointly",
    )
    fit.add_argument("--steps", type=int, default=500)
    fit.add_argument("--batch-size", type=int, default=4)
    fit.add_argument("--prior-preservation", action="store_true", help="add a loss on class images")
    fit.add_argument(
        "--class-images",
        action="append",
        default=[],
        metavar="[CLASS_WORD=]FOLDER",
        help="folder of the first concept's class images, or CLASS_WORD=FOLDER for any concept's class "
        "(repeatable; default: generated)",
    )
    _run_options(fit)
    fit.set_defaults(run=_personalize)

    gen = commands.add_parser("generate", help="sample images, optionally with trained artifacts")
    _model(gen)
    gen.add_argument("--prompt", required=True)
    gen.add_argument("--adapter", action="append", default=[], help="artifact folder/file (repeatable)")
    gen.add_argument("--negative-prompt", default=None)
    gen.add_argument("--steps", type=int_in(1), default=30, help="sampling steps (>= 1)")
    gen.add_argument("--guidance-scale", type=finite_float(), default=7.5)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--num-images", type=int_in(1), default=1, help="images per prompt (>= 1)")
    gen.add_argument("--scheduler", default=None, choices=sorted(diffusion.SCHEDULERS))
    gen.add_argument("--control-image", default=None, help="condition image for ControlNet / T2I-Adapter")
    gen.add_argument("--ip-image", default=None, help="reference image for IP-Adapter")
    gen.add_argument(
        "--height",
        type=int_in(8),
        default=None,
        help="pixels (default: the model's resolution, 1024 for SDXL)",
    )
    gen.add_argument("--width", type=int_in(8), default=None, help="pixels (default: the model's)")
    sizes = gen.add_argument_group("SDXL size conditioning (SDXL bases only)")
    for key, (first, second, least, text) in SIZE_OPTIONS.items():
        sizes.add_argument(f"--{key.replace('_', '-')}", nargs=2, type=int_in(least), metavar=(first, second),
                           default=None, help=text)  # fmt: skip
    gen.add_argument("--out", default="samples", help="folder for the PNGs")
    gen.set_defaults(run=_generate)

    _add_export(
        commands,
        "export-unet",
        "write the UNet with an SVDiff, LoRA or DiffFit artifact merged in, as a stock folder",
        _export_unet,
    )
    _add_export(
        commands,
        "export-merged",
        "write every component an SVDiff or DiffFit artifact adapts (unet/, and text_encoder/ when trained), "
        "merged, as stock folders",
        _export_merged,
    )
    _add_train_control(commands)
    return commands
