"""Train the reference CLIP-style model `studio/shapes-clip` on captioned shape images from `studio.world`.

    python assets/recipes/shapes_clip.py [--out assets/shapes-clip]

A small open_clip `CLIP` (a tiny timm ResNet image tower at 64×64, a 3-layer text transformer over
open_clip's BPE tokenizer) learns from image–caption pairs (`studio.world.caption_pairs`, short and detailed
captions, plus partial captions derived from them, `CAPTION_VARIANTS`) with open_clip's symmetric InfoNCE
loss (`ClipLoss`, learnable logit scale). The folder it writes loads with stock open_clip:
`open_clip.create_model_and_transforms("local-dir:assets/shapes-clip")`. Zero-shot accuracy with text
prompts is measured on freshly rendered images (a seed the training never used) after reloading the saved
fp16 weights.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import open_clip
import torch
from safetensors.torch import save_file
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[2]
# The repository root for `studio`, this folder for the sibling scripts (run as a plain script from anywhere).
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
from recipe_command import recipe_command  # noqa: E402

from studio.engine import cosine_decay  # noqa: E402
from studio.world import (  # noqa: E402
    COLOURS,
    HELDOUT_SHAPES,
    PRETRAIN_SHAPES,
    novel_concept_task,
    render,
    sample_scenes,
    shape_classification,
)
from studio.world import caption_pairs as world_caption_pairs  # noqa: E402

# The image tower is a small timm convnet (built by open_clip from `timm_model_name`, random init; timm's 0.4M
# `test_resnet`): a plain ViT with 8-px patches learned colour but not shape (42%) within a CPU budget.
# `timm_proj: ""` uses the network's own classifier (after its global pool) as the projection to `embed_dim`.
MODEL_CFG = {
    "embed_dim": 64,
    "vision_cfg": {
        "timm_model_name": "test_resnet",
        "timm_model_pretrained": False,
        "timm_pool": "avg",
        "timm_proj": "",
        "image_size": 64,
    },
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 3},
}
PREPROCESS_CFG = {"size": 64, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bicubic"}
SHAPE_TEMPLATES = ("a photo of a {}", "a {}")
COLOUR_TEMPLATES = ("a {} shape", "a photo of a {} shape")
WEIGHTS = "open_clip_model.safetensors"
# Each step a pair keeps its caption or, as web alt-text often does, names only part of the scene; partial
# captions make the batch contrast shape (or colour) alone, which full captions let colour and background do.
CAPTION_VARIANTS = (("{caption}", 0.5), ("a {shape}", 0.15), ("a photo of a {shape}", 0.15))
CAPTION_VARIANTS += (("a {colour} shape", 0.1), ("a {colour} {shape}", 0.1))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "assets" / "shapes-clip"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, the init and the batches")
    parser.add_argument("--pairs", type=int, default=20000, help="distinct image–caption pairs")
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--timm-model", default=MODEL_CFG["vision_cfg"]["timm_model_name"], help="image tower"
    )
    parser.add_argument("--eval-per-class", type=int, default=50, help="test images per class")
    return parser.parse_args(argv)


def write_config(out: Path, timm_model: str) -> None:
    """open_clip's hub format (`model_cfg` + `preprocess_cfg`), which its `local-dir:` schema reads."""
    out.mkdir(parents=True, exist_ok=True)
    model_cfg = {**MODEL_CFG, "vision_cfg": {**MODEL_CFG["vision_cfg"], "timm_model_name": timm_model}}
    config = {"model_cfg": model_cfg, "preprocess_cfg": PREPROCESS_CFG}
    (out / "open_clip_config.json").write_text(json.dumps(config, indent=2) + "\n")


def encode_images(images, preprocess) -> torch.Tensor:
    return torch.stack([preprocess(image) for image in images])


@torch.no_grad()
def zero_shot_accuracy(model, preprocess, tokenizer, images, labels, classnames, templates) -> float:
    """Top-1 accuracy of prompt-ensembled zero-shot classification (CLIP's protocol).

    Args:
        model: an open_clip model.
        preprocess: its image transform.
        tokenizer: its tokenizer.
        images: PIL images.
        labels: class index of each image.
        classnames: the class names filled into the templates.
        templates: prompt templates with one `{}`; the class embedding is their normalized mean.
    """
    model.eval()
    weights = []
    for name in classnames:
        text = model.encode_text(tokenizer([t.format(name) for t in templates]), normalize=True)
        weights.append(torch.nn.functional.normalize(text.mean(0), dim=-1))
    features = model.encode_image(encode_images(images, preprocess), normalize=True)
    predictions = (features @ torch.stack(weights).T).argmax(-1)
    return (predictions == torch.tensor(labels)).float().mean().item()


def evaluate(model, preprocess, tokenizer, per_class: int, seed: int) -> dict[str, float]:
    """Zero-shot shape and colour accuracy on fresh seen-concept images, and on the held-out shapes."""
    shapes = shape_classification(0, 0, per_class, seed=seed).test
    scenes = sample_scenes(per_class * len(COLOURS), seed + 1, "pretrain")
    colour_names = list(COLOURS)
    colour_images = [render(scene, 64, seed + i) for i, scene in enumerate(scenes)]
    novel = novel_concept_task(shots=1, val_per_class=0, test_per_class=per_class, seed=seed).test

    def accuracy(pairs, classes, templates):
        images, labels = zip(*pairs, strict=True)
        return round(zero_shot_accuracy(model, preprocess, tokenizer, images, labels, classes, templates), 4)

    return {
        "shape_accuracy": accuracy(shapes, PRETRAIN_SHAPES, SHAPE_TEMPLATES),
        "colour_accuracy": accuracy(
            zip(colour_images, [colour_names.index(s.colour) for s in scenes], strict=True),
            colour_names,
            COLOUR_TEMPLATES,
        ),
        "heldout_shape_accuracy": accuracy(novel, HELDOUT_SHAPES, SHAPE_TEMPLATES),
    }


def caption_variants(caption: str) -> list[str]:
    """The caption and its partial forms (`CAPTION_VARIANTS`), with shape and colour read from its words."""
    words = set(caption.split())
    (shape,) = words & set(PRETRAIN_SHAPES)
    (colour,) = words & set(COLOURS)
    return [t.format(caption=caption, shape=shape, colour=colour) for t, _ in CAPTION_VARIANTS]


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    # As open_clip's training: no decay on gains, biases and the logit scale; none on the token table
    # either, so rows of words the captions never use keep their random init instead of shrinking to 0.
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        skip = param.ndim < 2 or "logit_scale" in name or "token_embedding" in name
        (no_decay if skip else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    write_config(out, args.timm_model)
    torch.manual_seed(args.seed)
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{out}", load_weights=False)
    tokenizer = open_clip.get_tokenizer(f"local-dir:{out}")

    start = time.perf_counter()
    print(f"rendering {args.pairs} image–caption pairs", flush=True)
    pairs = world_caption_pairs(args.pairs, seed=args.seed)
    # Rendered and preprocessed once, kept in memory (fp16 halves it); nothing is cached to disk.
    images = encode_images((image for image, _ in tqdm(pairs, desc="preprocess")), preprocess).half()
    tokens = torch.stack([tokenizer(caption_variants(caption)) for _, caption in pairs], dim=1)
    variant_weights = torch.tensor([w for _, w in CAPTION_VARIANTS])
    del pairs

    loss_fn = open_clip.ClipLoss()
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.1), lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    warmup = max(1, args.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (s + 1) / warmup if s < warmup else cosine_decay((s - warmup) / (args.steps - warmup)),
    )
    generator = torch.Generator().manual_seed(args.seed)
    order = torch.empty(0, dtype=torch.long)
    model.train()  # BatchNorm in the convnet: batch statistics here, running statistics after model.eval()
    loop_start = time.perf_counter()
    bar = tqdm(range(args.steps), desc="train")
    for step in bar:
        if len(order) < args.batch_size:
            order = torch.cat([order, torch.randperm(len(images), generator=generator)])
        index, order = order[: args.batch_size], order[args.batch_size :]
        variant = torch.multinomial(variant_weights, len(index), replacement=True, generator=generator)
        image_features, text_features, logit_scale = model(images[index].float(), tokens[variant, index])
        loss = loss_fn(image_features, text_features, logit_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))  # as open_clip's training loop
        if step % 10 == 0 or step == args.steps - 1:
            bar.set_postfix(loss=f"{loss.item():.3f}", scale=f"{logit_scale.item():.1f}")
    train_seconds, loop_seconds = time.perf_counter() - start, time.perf_counter() - loop_start

    weights = out / WEIGHTS
    state = {k: v.detach().half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_file({k: v.contiguous() for k, v in state.items()}, str(weights))
    weights.chmod(0o644)
    return {
        "train_seconds": round(train_seconds, 1),
        "steps_per_second": round(args.steps / loop_seconds, 3),
        "final_loss": round(loss.item(), 4),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    result = train(args)
    # Measured on the saved fp16 weights, loaded the way users load them.
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{out}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{out}")
    accuracies = evaluate(model, preprocess, tokenizer, args.eval_per_class, seed=args.seed + 1000)
    metrics = {
        "recipe": recipe_command("shapes_clip.py", argv),
        "seed": args.seed,
        "hyperparameters": {k: v for k, v in vars(args).items() if k not in ("out", "seed")},
        "torch_threads": torch.get_num_threads(),
        **result,
        "parameters": sum(p.numel() for p in model.parameters()),
        "size_bytes": sum(f.stat().st_size for f in out.iterdir() if f.name != "metrics.json"),
        "zero_shot": accuracies,
        "caption_variants": dict(CAPTION_VARIANTS),
        "shape_templates": SHAPE_TEMPLATES,
        "colour_templates": COLOUR_TEMPLATES,
        "eval": f"{args.eval_per_class} fresh images per class, seed {args.seed + 1000}",
        "open_clip_version": open_clip.__version__,
        "torch_version": torch.__version__,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
