"""Fidelity and editability of every personalization method on the bundled `studio/shapes-sd`.

    python benchmarks/diffusion_fidelity.py [--steps 300] [--seeds 24] [--methods lora svdiff ...]
        [--library-defaults] [--json results.json]

Each method learns the held-out star (a shape the bundled model never drew) from 6 renders, in the same run
(batch 4, the same prompts, seed 0), at the learning rate `BUNDLED_LR` sets for this model (`--library-defaults`:
the library's, which target 512-px Stable Diffusion). Then, for `--seeds` seeds each:
- **fidelity**: the star rate of "a <token>" samples, by a shape probe (the frozen `studio/shapes-vit`
  features and a logistic regression fitted on world renders of every shape, held-out ones included);
- **editability**: "a green <token>" samples whose object is green, and "a <token> on a teal background"
  samples whose background is teal, read from the pixels (the nearest colour of the world's palette to the
  object's median pixel, and to the image corners').
The untrained rows sample the base model: "a star" (the word it never learned to draw), "a square" (where
Textual Inversion and Custom Diffusion start: their new token begins as the class word's embedding) and
"a <token> square" (where LoRA, SVDiff and DiffFit start: their prompt, the token spelled in pieces by the
tokenizer). The DreamBench convention this follows: fidelity = likeness to the subject, editability = prompt
following.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import diffusion  # noqa: E402
import vision  # noqa: E402
from studio.core import method_names  # noqa: E402
from studio.world import BACKGROUNDS, COLOURS, SHAPES, render, sample_scenes  # noqa: E402

TARGET = "star"
CLASS_WORD = "square"  # a shape the model knows, for the methods that start from or say a class word
TEMPLATES = ["a {}", "a {} on a grey background", "a small {}", "a large {}"]
TOKEN = "<star-concept>"

# The library's rates are the papers' for 512-px Stable Diffusion; on this 64-px model with 64-channel attention
# the UNet methods barely leave the class word's squares in 300 steps at them (star rate 0.00-0.04). Each rate
# here is the larger of 10x and 30x the library's at which the samples still look like the world's renders:
# at 30x SVDiff's and DiffFit's samples turn into noisy purple fields. Textual Inversion keeps the library's.
BUNDLED_LR = {"lora": 3e-3, "custom_diffusion": 1.2e-3, "svdiff": 1e-2, "difffit": 1e-2}


class ShapeProbe:
    """Names the shape in an image: `studio/shapes-vit`'s frozen pooled features and a logistic regression
    fitted on world renders of every shape (`per_shape` each, none of them a training image)."""

    def __init__(self, per_shape: int = 60, seed: int = 1) -> None:
        from sklearn.linear_model import LogisticRegression

        self.backbone = vision.create_model("studio/shapes-vit", pretrained=True).eval()
        self.transform = vision.image_transform(self.backbone)
        images, labels = world_renders(per_shape, seed)
        self.classifier = LogisticRegression(max_iter=2000).fit(self.features(images), labels)

    def features(self, images: list[Image.Image]) -> np.ndarray:
        """Pooled features of `images`."""
        batch = torch.stack([self.transform(image.convert("RGB")) for image in images])
        with torch.no_grad():
            return self.backbone.forward_head(self.backbone.forward_features(batch), pre_logits=True).numpy()

    def shapes(self, images: list[Image.Image]) -> list[str]:
        """The shape name the probe sees in each image."""
        return [SHAPES[i] for i in self.classifier.predict(self.features(images))]

    def accuracy(self, per_shape: int = 20, seed: int = 2) -> float:
        """Accuracy on fresh renders."""
        images, labels = world_renders(per_shape, seed)
        return float((self.classifier.predict(self.features(images)) == labels).mean())


def world_renders(per_shape: int, seed: int) -> tuple[list[Image.Image], np.ndarray]:
    """`per_shape` renders of every shape of the world and their shape indices."""
    images, labels = [], []
    for s, shape in enumerate(SHAPES):
        for i, scene in enumerate(sample_scenes(per_shape, seed + s, "all", shape=shape)):
            images.append(render(scene, 64, seed * 1000 + s * 100 + i))
            labels.append(s)
    return images, np.array(labels)


def _nearest(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    names = list(palette)
    distances = np.linalg.norm(np.array([palette[n] for n in names], dtype=float) - rgb, axis=1)
    return names[int(distances.argmin())]


def background_colour(image: Image.Image) -> str:
    """The world background nearest to the median of the image's four corner patches."""
    a = np.asarray(image.convert("RGB"), dtype=float)
    k = max(2, a.shape[0] // 10)
    corners = np.concatenate([a[:k, :k], a[:k, -k:], a[-k:, :k], a[-k:, -k:]]).reshape(-1, 3)
    return _nearest(np.median(corners, axis=0), BACKGROUNDS)


def object_colour(image: Image.Image) -> str:
    """The world colour most of the object's pixels (those far from the background colour) are nearest to."""
    a = np.asarray(image.convert("RGB"), dtype=float).reshape(-1, 3)
    background = np.array(BACKGROUNDS[background_colour(image)], dtype=float)
    object_pixels = a[np.linalg.norm(a - background, axis=1) > 60]
    if len(object_pixels) == 0:
        return "none"
    names = list(COLOURS)
    palette = np.array([COLOURS[n] for n in names], dtype=float)
    nearest = np.linalg.norm(object_pixels[:, None] - palette[None], axis=2).argmin(axis=1)
    return names[int(np.bincount(nearest, minlength=len(names)).argmax())]


def colour_reader_accuracy(per_colour: int = 10, seed: int = 3) -> tuple[float, float]:
    """How often `object_colour` and `background_colour` are right on world renders (any texture and size)."""
    objects = backgrounds = total = 0
    for colour in COLOURS:
        for i, scene in enumerate(sample_scenes(per_colour, seed, "all", colour=colour)):
            image = render(scene, 64, i)
            objects += object_colour(image) == colour
            backgrounds += background_colour(image) == scene.background
            total += 1
    return objects / total, backgrounds / total


def concept_images(count: int = 6) -> list[Image.Image]:
    """The star renders every method learns from."""
    return [
        render(scene, 64, 10 + i) for i, scene in enumerate(sample_scenes(count, 7, "heldout", shape=TARGET))
    ]


def scores(pipe, probe: ShapeProbe, token: str, adapters: list, seeds: int) -> dict[str, float]:
    """Fidelity (star rate of "a <token>") and the two editability rates, over `seeds` seeds each."""

    def sample(prompt: str) -> list[Image.Image]:
        return [diffusion.generate(pipe, prompt, adapters=adapters, num_inference_steps=25, guidance_scale=5.0,
                                   seed=s)[0] for s in range(seeds)]  # fmt: skip

    plain, green, teal = (
        sample(f"a {token}"),
        sample(f"a green {token}"),
        sample(f"a {token} on a teal background"),
    )
    return {
        "fidelity": float(np.mean([s == TARGET for s in probe.shapes(plain)])),
        "green": float(np.mean([object_colour(im) == "green" for im in green])),
        "teal": float(np.mean([background_colour(im) == "teal" for im in teal])),
    }


def subject(method: str) -> str:
    """How `method`'s prompts name the concept: the new token alone for Textual Inversion, "<token> square"
    (DreamBooth's token plus class word) for the methods that train the UNet."""
    return TOKEN if method == "textual_inversion" else f"{TOKEN} {CLASS_WORD}"


def train(pipe, method: str, steps: int, folder: Path, options: dict | None = None) -> tuple[Path, float]:
    """Train `method` on the star with `options` (its config fields, e.g. `lr`); returns the artifact and the
    seconds taken."""
    start = time.perf_counter()
    art = diffusion.personalize(pipe, concept_images(), method, token=TOKEN, class_word=CLASS_WORD, steps=steps,
                                batch_size=4, prompt_templates=TEMPLATES, output_dir=folder / method,
                                progress=False, **(options or {}))  # fmt: skip
    return art, time.perf_counter() - start


def measure(methods: list[str], steps: int, seeds: int, library_defaults: bool = False) -> list[dict]:
    """The table's rows: the untrained ones, then one per method (its name, learning rate option, scores and
    training seconds)."""
    probe = ShapeProbe()
    print(f"shape probe accuracy on fresh renders: {probe.accuracy():.3f}")
    objects, backgrounds = colour_reader_accuracy()
    print(f"colour reader accuracy on renders: objects {objects:.3f}, backgrounds {backgrounds:.3f}")
    pipe = diffusion.load_pipeline("studio/shapes-sd", disable_progress_bar=True)
    rows = []

    def add(row: dict) -> None:
        rows.append(row)
        lr = "" if row["lr"] is None else f" (lr {row['lr']})"
        print(f"{row['name']}{lr}: star rate {row['fidelity']:.2f}, green {row['green']:.2f}, "
              f"teal {row['teal']:.2f}, {row['seconds']:.0f} s", flush=True)  # fmt: skip

    for prompt in (TARGET, CLASS_WORD, subject("lora")):
        add({"name": f"untrained ('a {prompt}')", "method": None, "lr": None, "seconds": 0.0,
             **scores(pipe, probe, prompt, [], seeds)})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for method in methods:
            options = {} if library_defaults or method not in BUNDLED_LR else {"lr": BUNDLED_LR[method]}
            art, seconds = train(pipe, method, steps, Path(tmp), options)
            add({"name": method, "method": method, "lr": options.get("lr", "library default"),
                 "seconds": seconds, **scores(pipe, probe, subject(method), [art], seeds)})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=24)
    parser.add_argument("--methods", nargs="*", default=None, help="default: every personalization method")
    parser.add_argument(
        "--library-defaults",
        action="store_true",
        help="train at the library's learning rates, not BUNDLED_LR",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    args = parser.parse_args()
    methods = args.methods or method_names("diffusion", "personalize")
    rows = measure(methods, args.steps, args.seeds, args.library_defaults)
    if args.json is not None:
        args.json.write_text(json.dumps({"steps": args.steps, "seeds": args.seeds, "rows": rows}, indent=1))
    print(f"\n{args.steps} steps, batch 4, {args.seeds} seeds per prompt")
    print(
        "| method | lr | fidelity: star rate | editability: green object | editability: teal background | train s |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        lr = "" if r["lr"] is None else r["lr"]
        print(
            f"| {r['name']} | {lr} | {r['fidelity']:.2f} | {r['green']:.2f} | {r['teal']:.2f} | {r['seconds']:.0f} |"
        )


if __name__ == "__main__":
    main()
