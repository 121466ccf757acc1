"""Recipe for `studio/shapes-vit`: a small ViT (conv stem) trained from scratch on the joint shape+colour task.

Run from the repository root (CPU: 9 to 15 minutes on 2 idle cores, by CPU; see assets/README.md):

    python assets/recipes/shapes_vit.py [--out assets/shapes-vit]

Classes are "<colour> <shape>" over `PRETRAIN_SHAPES` × `COLOURS` minus `HELDOUT_COMBINATIONS`, so the model
scores shape and colour at once (e.g. the prompt following of a text-to-image model). Background, texture,
size, position and rotation are random. Writes `model.safetensors` (fp16), `config.json` and `metrics.json`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from recipe_command import recipe_command  # sibling script: Python puts this folder on sys.path

import vision
from studio.core import inject, write_json
from studio.world import COLOURS, PRETRAIN_SHAPES, render, sample_scenes
from studio.world.vocab import is_heldout

# A ViT with timm's hybrid conv stem (7×7 conv + max-pool, then 2×2 patches: 8×8 tokens at 64 px): plain
# patchify ViTs (patch 8 or 16) learnt colour at once but shape barely in this CPU budget (≤ 30 % shape
# accuracy after ~500 steps); the early convolution is what makes shape learnable in minutes.
ARCHITECTURE = "vit_tiny_r_s16_p8_224"
MODEL_KWARGS = {
    "img_size": 64,
    "patch_size": 2,
    "embed_dim": 128,
    "depth": 4,
    "num_heads": 4,
    "mlp_ratio": 4.0,
    "class_token": False,
    "global_pool": "avg",
}
SEED = 0
TEST_SEED = 1  # test images come from another seed: freshly drawn scenes and renders


def joint_classes() -> list[tuple[str, str]]:
    """`(shape, colour)` of every class, shape-major; the class name is `f"{colour} {shape}"`."""
    return [(s, c) for s in PRETRAIN_SHAPES for c in COLOURS if not is_heldout(s, c)]


def draw(per_class: int, seed: int, size: int) -> list[tuple[Image.Image, int]]:
    """`per_class` rendered scenes per joint class, classes interleaved; each class has its own seed stream."""
    per_label = []
    for label, (shape, colour) in enumerate(joint_classes()):
        scene_seed, *render_seeds = np.random.SeedSequence([seed, label]).generate_state(per_class + 1)
        scenes = sample_scenes(per_class, int(scene_seed), "pretrain", shape=shape, colour=colour)
        per_label.append(
            [(render(sc, size, int(r)), label) for sc, r in zip(scenes, render_seeds, strict=True)]
        )
    return [pair for group in zip(*per_label, strict=True) for pair in group]


@torch.inference_mode()
def predict(
    model: torch.nn.Module, pairs: list[tuple[Image.Image, int]], batch_size: int = 256
) -> np.ndarray:
    """Predicted class index of every image."""
    model.eval()
    transform = vision.image_transform(model)
    out = []
    for start in range(0, len(pairs), batch_size):
        images = torch.stack([transform(image) for image, _ in pairs[start : start + batch_size]])
        out.append(model(images).argmax(-1).numpy())
    return np.concatenate(out)


def accuracies(model: torch.nn.Module, pairs: list[tuple[Image.Image, int]]) -> dict[str, float]:
    """Joint, shape-only and colour-only accuracy."""
    classes = np.array(joint_classes())
    predicted, labels = predict(model, pairs), np.array([label for _, label in pairs])
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "shape_accuracy": float(np.mean(classes[predicted, 0] == classes[labels, 0])),
        "colour_accuracy": float(np.mean(classes[predicted, 1] == classes[labels, 1])),
        "n": len(pairs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="assets/shapes-vit", help="output folder")
    parser.add_argument("--train-per-class", type=int, default=300)
    parser.add_argument("--test-per-class", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [f"{colour} {shape}" for shape, colour in joint_classes()]
    size = MODEL_KWARGS["img_size"]

    start = time.perf_counter()
    train_pairs = draw(args.train_per_class, SEED, size)
    val_pairs = draw(max(args.test_per_class // 4, 1), SEED + 100, size)
    test_pairs = draw(args.test_per_class, TEST_SEED, size)
    print(
        f"{len(names)} classes; drew {len(train_pairs)} train / {len(test_pairs)} test images "
        f"in {time.perf_counter() - start:.0f}s"
    )

    torch.manual_seed(SEED)
    model = vision.create_model(ARCHITECTURE, num_classes=len(names), **MODEL_KWARGS)
    inject(model, vision.FullFinetuneConfig())
    params = sum(p.numel() for p in model.parameters())
    print(f"{ARCHITECTURE} {MODEL_KWARGS}: {params:,} parameters")
    start = time.perf_counter()
    result = vision.finetune(
        model,
        train_pairs,
        val_pairs,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        weight_decay=0.05,
        warmup_steps=0.05,
        seed=SEED,
    )
    train_seconds = time.perf_counter() - start
    print(
        f"trained in {train_seconds / 60:.1f} min; val per epoch: {[round(e['accuracy'], 3) for e in result.evals]}"
    )

    metrics = accuracies(model, test_pairs)
    print(f"test: {metrics}")
    out = Path(args.out)
    state = {k: v.half() for k, v in model.state_dict().items()}
    from studio.core import save_tensors

    save_tensors(out / "model.safetensors", state, metadata={"format": "pt"})
    config = vision.data_config(model)
    write_json(
        out / "config.json",
        {
            "architecture": ARCHITECTURE,
            "model_kwargs": MODEL_KWARGS,
            "num_classes": len(names),
            "classes": names,
            "data_config": {k: config[k] for k in ("input_size", "mean", "std", "interpolation", "crop_pct")},
        },
    )
    write_json(
        out / "metrics.json",
        {
            "recipe": recipe_command("shapes_vit.py"),
            "seed": SEED,
            "test_seed": TEST_SEED,
            "train_images": len(train_pairs),
            "epochs": args.epochs,
            "lr": args.lr,
            "batch_size": args.batch_size,
            "train_seconds": round(train_seconds, 1),
            "torch_threads": torch.get_num_threads(),
            "parameters": params,
            "file_bytes": (out / "model.safetensors").stat().st_size,
            "test": metrics,
        },
    )
    print(f"wrote {out}/ ({(out / 'model.safetensors').stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
