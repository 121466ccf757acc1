"""Diffusion jobs (personalize, train a control) and sampling, through `diffusion`'s public API.

Training jobs load their own pipeline (training changes it); sampling shares one cached pipeline per base
model, which `diffusion.generate` leaves as it found it, and runs beside a training job.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import diffusion

from ..forms import number
from ..library import Entry
from ..workspace import list_images, safe_name

PREVIEW_PROMPT = "a {token}"
CHECKPOINT_EVERY = 50  # steps; a crashed run resumes from at most this far back
MAX_SEED = 2**32 - 1  # torch generators take 64-bit seeds; 32 bits are what people type and share
MAX_SAMPLING_STEPS = 1000


def _pipeline(ctx, model: str):
    ctx.report(f"loading {model}")
    return diffusion.load_pipeline(model, disable_progress_bar=True)


def _training_extras(ctx) -> dict[str, Any]:
    """What every diffusion training gets from the job: progress and Stop, resume, previews into the page."""
    every = int(ctx.params.get("preview_every") or 0)
    return {
        "output_dir": str(ctx.output_dir),
        "callbacks": [ctx.callback],
        "resume": ctx.resume,
        "checkpoint_every": CHECKPOINT_EVERY,
        "preview_every": every or None,
        "on_preview": lambda step, images: [ctx.add_preview(im, step) for im in images],
        "progress": False,
        "memory": ctx.params.get("gpu_memory", "auto"),
    }


def run_personalize(studio, ctx) -> Path | None:
    """Personalize a pipeline on uploaded images and publish the artifact (job kind `"personalize"`)."""
    p = ctx.params
    pipe = _pipeline(ctx, p["model"])
    images = list_images(studio.workspace.inside(p["data"]))
    ctx.report(f"training {p['method']} for {p['token']} on {len(images)} images")
    art = diffusion.personalize(
        pipe,
        images,
        p["method"],
        p["token"],
        class_word=p["class_word"] or None,
        steps=int(p["steps"]),
        preview_prompt=PREVIEW_PROMPT.format(token=p["token"]),
        concepts=[
            {
                "token": c["token"],
                "class_word": c["class_word"] or None,
                "images": list_images(studio.workspace.inside(c["data"])),
            }
            for c in p.get("concepts", [])
        ],  # fmt: skip
        **p.get("options", {}),
        **_training_extras(ctx),
    )
    if ctx.should_stop():
        return None
    entry = Entry(
        p["name"], "diffusion", p["method"], p["model"], job=ctx.job.id, extra={"token": p["token"]}
    )
    return studio.library.folder(studio.library.publish(art, entry).name)


def run_control(studio, ctx) -> Path | None:
    """Train a control method (ControlNet, T2I-Adapter, IP-Adapter, ...) on an uploaded dataset (job kind
    `"control"`)."""
    p = ctx.params
    pipe = _pipeline(ctx, p["model"])
    ctx.report(f"training {p['method']}")
    art = diffusion.train_control(
        pipe,
        str(studio.workspace.inside(p["data"])),
        p["method"],
        p.get("condition"),
        int(p["steps"]),
        config=p.get("options") or None,
        condition_params=p.get("condition_params") or None,
        **_training_extras(ctx),
    )
    if ctx.should_stop():
        return None
    entry = Entry(p["name"], "diffusion", p["method"], p["model"], job=ctx.job.id)
    entry.extra = {"condition": p.get("condition")}
    return studio.library.folder(studio.library.publish(art, entry).name)


RUNNERS = {"personalize": run_personalize, "control": run_control}


class PipelineCache:
    """One loaded pipeline per base model for sampling, used by one sampler at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._pipes: dict[str, Any] = {}

    def get(self, model: str):
        """The sampling pipeline of `model` (loaded on first use; the least recent is dropped past two)."""
        if model not in self._pipes:
            if len(self._pipes) >= 2:
                self._pipes.pop(next(iter(self._pipes)))
            self._pipes[model] = diffusion.load_pipeline(model, disable_progress_bar=True)
        return self._pipes[model]


def sample(
    studio, cache: PipelineCache, settings: dict[str, Any], control_image=None, ip_image=None
) -> list[tuple[str, str]]:
    """Generate images and record each one's settings beside it in `generations/`.

    Args:
        studio: the app's `Studio`.
        cache: the sampling pipelines.
        settings: `model`, `prompt`, `negative_prompt`, `seed`, `steps`, `guidance` (as the form gives them),
            `adapters` (library names).
        control_image: a PIL image for a ControlNet / T2I-Adapter (a photo is converted by its extractor).
        ip_image: a PIL reference image for an IP-Adapter.

    Returns:
        `(image path, caption)` pairs for the gallery.

    Raises:
        ValueError: no prompt, a seed, step count or guidance out of bounds, or a local model outside the
            allowed folders.
    """
    if not (settings.get("prompt") or "").strip():
        raise ValueError("type a prompt")
    settings = {
        **settings,
        "model": studio.models.check("model", settings.get("model")),
        "seed": number("seed", settings.get("seed"), minimum=0, maximum=MAX_SEED, whole=True),
        "steps": number("steps", settings.get("steps"), minimum=1, maximum=MAX_SAMPLING_STEPS, whole=True),
        "guidance": number("guidance", settings.get("guidance"), minimum=0, maximum=100),
    }
    adapters = [str(studio.library.path(name)) for name in settings.get("adapters") or []]
    kwargs = {
        "adapters": adapters,
        "negative_prompt": settings.get("negative_prompt") or None,
        "num_inference_steps": settings["steps"],
        "guidance_scale": settings["guidance"],
        "seed": settings["seed"],
        "control_image": control_image,
        "ip_image": ip_image,
    }
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    with cache.lock:
        pipe = cache.get(settings["model"])
        images = diffusion.generate(pipe, settings["prompt"], **kwargs)
    images = images if isinstance(images, list) else [images]
    folder = studio.workspace.new_folder("generations", safe_name(settings["prompt"])[:40])
    # The guiding images are part of the settings: kept beside the images, named in each record.
    guides = {"control_image": control_image, "ip_image": ip_image}
    for key, guide in guides.items():
        if guide is not None:
            guide.save(folder / f"{key}.png")
    inputs = {key: f"{key}.png" for key, guide in guides.items() if guide is not None}
    out = []
    for i, image in enumerate(images):
        path = folder / f"{i:02d}.png"
        image.save(path)
        record = {**settings, **inputs, "index": i, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
        (folder / f"{i:02d}.json").write_text(json.dumps(record, indent=2))
        out.append((str(path), caption(settings)))
    return out


def caption(settings: dict[str, Any]) -> str:
    """The settings of a generated image as one line under it in the gallery."""
    adapters = ", ".join(settings.get("adapters") or []) or "none"
    negative = f" | not: {settings['negative_prompt']}" if settings.get("negative_prompt") else ""
    return (
        f"{settings['prompt']}{negative} | seed {settings['seed']}, {settings['steps']} steps, "
        f"guidance {settings['guidance']} | {settings['model']} + {adapters}"
    )


def export_artifact(studio, name: str) -> tuple[Path, str]:
    """A download in diffusers' formats for library entry `name`, with a note on how to load it.

    A method whose artifact stock diffusers does not load (SVDiff, DiffFit: `ArtifactSpec.merged_components`)
    exports every component it adapts, merged, as stock folders (`unet/`, and `text_encoder/` when trained);
    the other artifacts are already in their diffusers format, so the export is their folder as a zip. The
    note is the method's `loads_with`.

    Raises:
        ValueError: the entry is not a diffusion artifact.
    """
    entry = studio.library.get(name)
    if entry.domain != "diffusion":
        raise ValueError(
            f"{name!r} is a {entry.domain} adapter; export applies to diffusion artifacts (use Download)"
        )
    spec = diffusion.artifact_spec(entry.method)
    if spec.merged_components is not None:
        out = studio.workspace.new_folder("tmp", f"{name}-merged")
        pipe = diffusion.load_pipeline(entry.base_model, disable_progress_bar=True)
        diffusion.export_merged_components(
            pipe, studio.library.path(name), out / "merged", check_base_model=False
        )
        archive = shutil.make_archive(str(out / f"{name}-merged"), "zip", root_dir=out / "merged")
        return Path(archive), f"load with {spec.loads_with}"
    return studio.library.zip(name), f"load with {spec.loads_with}"
