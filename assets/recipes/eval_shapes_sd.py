"""Quality of `studio/shapes-sd`: does the reference ViT see the prompted shape and colour?

    python assets/recipes/eval_shapes_sd.py [--model studio/shapes-sd] [--seeds 20]

For every pretraining shape, two colours (a fixed rotation through `COLOURS`) and two prompt styles (the
world's short caption, "a red circle on a grey background", and the bare "a red circle"), `--seeds` images
are sampled and classified by `studio/shapes-vit` (joint "red circle" labels). Prints the fraction classified
as exactly the prompted colour and shape, and the shape-only and colour-only fractions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import vision  # noqa: E402
from diffusion import load_pipeline  # noqa: E402
from studio.world import (  # noqa: E402
    BACKGROUNDS,
    COLOURS,
    PRETRAIN_SHAPES,
    Scene,
    has_contrast,
    render,
    sample_scenes,
)
from studio.world.vocab import is_heldout  # noqa: E402


def eval_prompts(colours_per_shape: int = 2) -> list[tuple[str, str, str]]:
    """`(prompt, colour, shape)` for seen shape-colour pairs, in both prompt styles."""
    colours, prompts = list(COLOURS), []
    for i, shape in enumerate(PRETRAIN_SHAPES):
        picked = [c for c in colours[i:] + colours[:i] if not is_heldout(shape, c)][:colours_per_shape]
        for colour in picked:
            background = next(b for b in BACKGROUNDS if has_contrast(colour, b))
            prompts.append((Scene(shape, colour, background=background).caption("short"), colour, shape))
            prompts.append((f"a {colour} {shape}", colour, shape))
    return prompts


def _classifier(name: str):
    model = vision.create_model(name, pretrained=True).eval()
    return model, vision.image_transform(model), model.pretrained_cfg["label_names"]


@torch.no_grad()
def reconstruction_accuracy(
    vae, images: int = 200, classifier: str = "studio/shapes-vit"
) -> dict[str, float]:
    """How often the classifier still names shape and colour after a VAE round trip of fresh world images:
    the ceiling that prompt following can reach through this VAE."""
    model, transform, classes = _classifier(classifier)
    scenes = sample_scenes(images, 123, "pretrain")
    originals = [render(scene, 64, i) for i, scene in enumerate(scenes)]
    pixels = torch.stack([torch.from_numpy(np.asarray(im)).permute(2, 0, 1) for im in originals]) / 127.5 - 1
    decoded = vae.decode(vae.encode(pixels.to(vae.device)).latent_dist.mean).sample.clamp(-1, 1).cpu()
    arrays = ((decoded.permute(0, 2, 3, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    predicted = model(torch.stack([transform(Image.fromarray(a)) for a in arrays])).argmax(1).tolist()
    joint = [classes[i] == f"{s.colour} {s.shape}" for i, s in zip(predicted, scenes, strict=True)]
    shape = [classes[i].split()[-1] == s.shape for i, s in zip(predicted, scenes, strict=True)]
    return {"vae_joint_accuracy": float(np.mean(joint)), "vae_shape_accuracy": float(np.mean(shape))}


@torch.no_grad()
def evaluate(
    pipe: StableDiffusionPipeline,
    seeds: int = 20,
    steps: int = 25,
    guidance_scale: float = 5.0,
    classifier: str = "studio/shapes-vit",
    save_grid: str | Path | None = None,
) -> dict[str, float]:
    """Sample every evaluation prompt with seeds `0..seeds-1` and classify the images.

    Args:
        pipe: the text-to-image pipeline.
        seeds: samples per prompt.
        steps: sampling steps.
        guidance_scale: classifier-free guidance scale.
        classifier: the bundled joint shape+colour classifier.
        save_grid: optionally write one PNG row per prompt here.

    Returns:
        `{"joint_accuracy", "shape_accuracy", "colour_accuracy", "prompts"}` over all samples.
    """
    model, transform, classes = _classifier(classifier)
    pipe.set_progress_bar_config(disable=True)
    hits = {"joint": 0, "shape": 0, "colour": 0}
    rows, prompts = [], eval_prompts()
    for prompt, colour, shape in prompts:
        generator = [torch.Generator().manual_seed(s) for s in range(seeds)]
        images = pipe(
            [prompt] * seeds, num_inference_steps=steps, guidance_scale=guidance_scale, generator=generator
        ).images
        predicted = [
            classes[i] for i in model(torch.stack([transform(im) for im in images])).argmax(1).tolist()
        ]
        hits["joint"] += sum(p == f"{colour} {shape}" for p in predicted)
        hits["shape"] += sum(p.split()[-1] == shape for p in predicted)
        hits["colour"] += sum(p.split()[0] == colour for p in predicted)
        rows.append(images)
    if save_grid:
        _grid(rows).save(save_grid)
    total = len(prompts) * seeds
    return {f"{k}_accuracy": v / total for k, v in hits.items()} | {"prompts": len(prompts)}


def _grid(rows: list[list]):
    size = rows[0][0].size[0]
    grid = Image.new("RGB", (size * len(rows[0]), size * len(rows)))
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            grid.paste(image, (c * size, r * size))
    return grid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="studio/shapes-sd", help="bundled name or diffusers folder")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance-scale", type=float, default=5.0)
    parser.add_argument("--grid", default=None, help="write a PNG grid of the samples here")
    args = parser.parse_args(argv)
    pipe = load_pipeline(args.model, disable_progress_bar=True)
    metrics = evaluate(pipe, args.seeds, args.steps, args.guidance_scale, save_grid=args.grid)
    metrics |= reconstruction_accuracy(pipe.vae)
    print(json.dumps({k: round(v, 4) for k, v in metrics.items()}, indent=1))


if __name__ == "__main__":
    main()
