"""Control tab: a captioned dataset, a control method (ControlNet, T2I-Adapter, IP-Adapter, ... as
registered), and a condition preview."""

from __future__ import annotations

import zipfile

import gradio as gr

from diffusion.conditions import CONDITIONS, extract_condition
from diffusion.control import control_method, control_methods
from studio.core import method_configs
from studio.world import render_with_conditions, sample_scenes

from ..errors import guarded
from ..forms import MethodForm, restore_on_load
from ..workspace import CAPTION_SUFFIXES, IMAGE_SUFFIXES
from .progress import ProgressPanel
from .training import base_model_box, gpu_memory_choice, run_controls, run_params
from .uploads import upload_gallery

TITLE = "Control"
FROM_DATASET = "from the dataset (conditions/ folder)"
SAMPLE_PAIRS = 24
SAMPLE_SIZE = 64
DEFAULT_METHOD = "controlnet"


def condition_params(condition: str, low: float, high: float) -> dict:
    """The extractor parameters the tab's sliders set (only canny has thresholds)."""
    return {"low_threshold": int(low), "high_threshold": int(high)} if condition == "canny" else {}


def sample_dataset(studio) -> str:
    """A zip of captioned renders with their masks in `conditions/`, drawn by the image world (written once).

    It lets a newcomer train a control without a dataset of their own: with "from the dataset" the control
    learns masks, with an extractor (canny, ...) it derives its conditions from the images.

    Returns:
        The zip's path inside the workspace.
    """
    path = studio.workspace.inside("datasets", "control-sample.zip")
    if not path.is_file():
        staging = studio.workspace.new_folder("tmp", "control-sample") / path.name
        with zipfile.ZipFile(staging, "w") as archive:
            for i, scene in enumerate(sample_scenes(SAMPLE_PAIRS, seed=0)):
                drawn = render_with_conditions(scene, SAMPLE_SIZE, seed=i)
                for member, image in (
                    (f"{i:02d}.png", drawn["image"]),
                    (f"conditions/{i:02d}.png", drawn["mask"]),
                ):
                    with archive.open(member, "w") as out:
                        image.save(out, format="PNG")
                archive.writestr(f"{i:02d}.txt", drawn["caption"])
        staging.replace(path)
    return str(path)


def shown_for(method: str, condition: str) -> tuple[gr.Dropdown, gr.Slider, gr.Slider]:
    """The condition box shows for condition-guided controls only, the canny thresholds for canny only."""
    spatial = not control_method(method).spec.reference
    canny = spatial and condition == "canny"
    return gr.Dropdown(visible=spatial), gr.Slider(visible=canny), gr.Slider(visible=canny)


def preview_condition(photo, condition: str, low: float, high: float):
    """The condition image the chosen extractor derives from `photo` (None without a photo)."""
    if photo is None or condition not in CONDITIONS:
        return None
    return extract_condition(photo, condition, **condition_params(condition, low, high))


def start(
    studio,
    files,
    model,
    method,
    condition,
    low,
    high,
    steps,
    preview_every,
    name,
    options=None,
    gpu_memory="auto",
) -> str:
    """Queue a control training job; returns its id.

    Args:
        studio: the app's `Studio`.
        files: a zip (or files) of images with captions (`.txt` or `metadata.jsonl`), optionally `conditions/`.
        model: the base pipeline.
        method: a registered control method (`diffusion.control.control_methods()`).
        condition: an extractor name, or `FROM_DATASET` (ignored for reference-guided methods).
        low: canny low threshold.
        high: canny high threshold.
        steps: training steps.
        preview_every: steps between preview samples (0: none).
        name: the artifact's library name.
        options: the method's config values (`diffusion.ControlNetConfig` etc.).
        gpu_memory: the GPU-memory preset (`diffusion.memory.MemoryOptions`).

    Raises:
        ValueError: an unknown method, no upload, a bad zip.
    """
    registered = control_method(method)  # an unknown method fails here
    registered.config_cls(**(options or {}))  # so does a bad option, before anything is queued
    reference = registered.spec.reference
    folder = studio.workspace.import_files(files, "control-data", IMAGE_SUFFIXES + CAPTION_SUFFIXES)
    extractor = None if condition == FROM_DATASET or reference else condition
    params = run_params(studio, folder, model, method, steps, preview_every, name, options, gpu_memory)
    params.update(condition=extractor, condition_params=condition_params(extractor, low, high))
    if reference:  # an image prompt: no condition to name
        params["name"], title = name or method, method
    else:
        params["name"] = name or f"{method}-{extractor or 'data'}"
        title = f"{method} ({extractor or 'dataset conditions'})"
    return studio.jobs.submit("control", params, title=title).id


def build(studio, timer: gr.Timer) -> None:
    """Lay out the tab and wire its events; its method choices and forms are the registered control methods."""
    configs = method_configs("diffusion", "control")
    files = gr.File(
        label="dataset: a zip of images with captions (same-name .txt or metadata.jsonl), optionally conditions/",
        file_count="multiple", file_types=[".zip", "image", ".txt", ".jsonl"], elem_id="control-files",
    )  # fmt: skip
    with gr.Row():
        sample = gr.Button("Use sample data", size="sm", elem_id="control-sample", scale=0)
        gr.Markdown(
            f"{SAMPLE_PAIRS} captioned shapes with their masks (in `conditions/`), drawn by the studio's image "
            "world: train a control without a dataset of your own."
        )
    upload_gallery(files, "control-uploads")
    with gr.Row():
        model = base_model_box()
        method = gr.Radio(
            list(configs),
            value=DEFAULT_METHOD,
            label="method",
            elem_id="control-method",
            info=" ".join(f"{m.name}: {m.spec.summary}." for m in control_methods()),
        )
        condition = gr.Dropdown(
            [*CONDITIONS, FROM_DATASET],
            value="canny",
            label="condition",
            info="How condition images are derived from the training images (and later from a photo).",
        )
    with gr.Row():
        low = gr.Slider(
            0,
            255,
            100,
            step=1,
            label="canny low threshold",
            info="Hysteresis low threshold on the gradient magnitude (ControlNet's recipe: 100).",
        )
        high = gr.Slider(
            0,
            255,
            200,
            step=1,
            label="canny high threshold",
            info="Hysteresis high threshold (ControlNet's recipe: 200).",
        )
    with gr.Row():
        photo = gr.Image(
            type="pil", label="photo for the condition preview", height=200, elem_id="control-photo"
        )
        preview = gr.Image(
            type="pil", label="condition preview", height=200, interactive=False, elem_id="control-condition"
        )
    with gr.Row():
        steps, preview_every, name = run_controls("control")
        gpu_memory = gpu_memory_choice("control")
    form = MethodForm(configs, DEFAULT_METHOD)
    train = gr.Button("Train", variant="primary", elem_id="control-train")
    panel = ProgressPanel(studio, ("control",), previews=True)

    def on_train(files, model, method, condition, low, high, steps, preview_every, name, memory, *values):
        options = form.options(method, list(values))
        start(studio, files, model, method, condition, low, high, steps, preview_every, name, options, memory)
        return panel.redraw()

    for trigger in (photo.change, condition.change, low.release, high.release):
        trigger(guarded(preview_condition), [photo, condition, low, high], preview, show_progress="hidden")
    inputs = [
        files,
        model,
        method,
        condition,
        low,
        high,
        steps,
        preview_every,
        name,
        gpu_memory,
        *form.inputs,
    ]
    restore_on_load(panel.job, inputs[1:], lambda p: [
        p["model"], p["method"], p.get("condition") or FROM_DATASET,
        (p.get("condition_params") or {}).get("low_threshold", gr.skip()),
        (p.get("condition_params") or {}).get("high_threshold", gr.skip()),
        p["steps"], p["preview_every"], p["name"], p.get("gpu_memory", "auto"),
        *form.values(p["method"], p["options"]),
    ])  # fmt: skip
    train.click(guarded(on_train), inputs, panel.outputs)
    method.change(form.show, method, list(form.groups.values()), queue=False)
    for trigger in (method.change, condition.change):
        trigger(shown_for, [method, condition], [condition, low, high], queue=False)
    sample.click(guarded(lambda: [sample_dataset(studio)]), None, files)
    panel.bind(timer)
