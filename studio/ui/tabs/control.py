"""Control tab: a captioned dataset, ControlNet / T2I-Adapter / IP-Adapter, and a condition preview."""

from __future__ import annotations

import gradio as gr

import diffusion
from diffusion.conditions import CONDITIONS, extract_condition

from ..errors import guarded
from ..forms import MethodForm
from ..tasks.diffusion import CONTROL_METHODS
from ..workspace import CAPTION_SUFFIXES, IMAGE_SUFFIXES
from .progress import ProgressPanel
from .training import base_model_box, run_controls, run_params

TITLE = "Control"
FROM_DATASET = "from the dataset (conditions/ folder)"
CONFIGS = {
    c.method: c for c in (diffusion.ControlNetConfig, diffusion.T2IAdapterConfig, diffusion.IPAdapterConfig)
}


def condition_params(condition: str, low: float, high: float) -> dict:
    """The extractor parameters the tab's sliders set (only canny has thresholds)."""
    return {"low_threshold": int(low), "high_threshold": int(high)} if condition == "canny" else {}


def preview_condition(photo, condition: str, low: float, high: float):
    """The condition image the chosen extractor derives from `photo` (None without a photo)."""
    if photo is None or condition not in CONDITIONS:
        return None
    return extract_condition(photo, condition, **condition_params(condition, low, high))


def start(
    studio, files, model, method, condition, low, high, steps, preview_every, name, options=None
) -> str:
    """Queue a control training job; returns its id.

    Args:
        studio: the app's `Studio`.
        files: a zip (or files) of images with captions (`.txt` or `metadata.jsonl`), optionally `conditions/`.
        model: the base pipeline.
        method: `"controlnet"`, `"t2i_adapter"` or `"ip_adapter"`.
        condition: an extractor name, or `FROM_DATASET`.
        low: canny low threshold.
        high: canny high threshold.
        steps: training steps.
        preview_every: steps between preview samples (0: none).
        name: the artifact's library name.
        options: the method's config values (`diffusion.ControlNetConfig` etc.).

    Raises:
        ValueError: an unknown method, no upload, a bad zip.
    """
    if method not in CONTROL_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(CONTROL_METHODS)}")
    CONFIGS[method](**(options or {}))  # a bad option fails here, before anything is queued
    folder = studio.workspace.import_files(files, "control-data", IMAGE_SUFFIXES + CAPTION_SUFFIXES)
    extractor = None if condition == FROM_DATASET else condition
    params = run_params(studio, folder, model, method, steps, preview_every, name, options)
    params.update(condition=extractor, condition_params=condition_params(extractor, low, high))
    params["name"] = name or f"{method}-{extractor or 'data'}"
    return studio.jobs.submit("control", params, title=f"{method} ({extractor or 'dataset conditions'})").id


def build(studio, timer: gr.Timer) -> None:
    """Lay out the tab and wire its events."""
    files = gr.File(
        label="dataset: a zip of images with captions (same-name .txt or metadata.jsonl), optionally conditions/",
        file_count="multiple", file_types=[".zip", "image", ".txt", ".jsonl"],
    )  # fmt: skip
    with gr.Row():
        model = base_model_box()
        method = gr.Radio(
            list(CONTROL_METHODS),
            value="controlnet",
            label="method",
            info="ControlNet: a trainable encoder copy (largest, strongest). T2I-Adapter: a small side network. IP-Adapter: an image prompt instead of a condition map.",
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
        photo = gr.Image(type="pil", label="photo for the condition preview", height=200)
        preview = gr.Image(type="pil", label="condition preview", height=200, interactive=False)
    with gr.Row():
        steps, preview_every, name = run_controls("control")
    form = MethodForm(CONFIGS, "controlnet")
    train = gr.Button("Train", variant="primary")
    panel = ProgressPanel(studio, ("control",), previews=True)

    def on_train(files, model, method, condition, low, high, steps, preview_every, name, *values):
        options = form.options(method, list(values))
        start(studio, files, model, method, condition, low, high, steps, preview_every, name, options)
        return panel.redraw()

    for trigger in (photo.change, condition.change, low.release, high.release):
        trigger(guarded(preview_condition), [photo, condition, low, high], preview, show_progress="hidden")
    inputs = [files, model, method, condition, low, high, steps, preview_every, name, *form.inputs]
    train.click(guarded(on_train), inputs, panel.outputs)
    method.change(form.show, method, list(form.groups.values()), queue=False)
    panel.bind(timer)
