"""Controls and job parameters that the diffusion training tabs (Personalize, Control) share."""

from __future__ import annotations

import gradio as gr

from ..forms import number

DEFAULT_PIPELINE = "studio/shapes-sd"
MAX_STEPS = 100_000


def base_model_box() -> gr.Textbox:
    """The base pipeline's name."""
    return gr.Textbox(
        DEFAULT_PIPELINE,
        label="base model",
        info="The bundled studio/shapes-sd, a local diffusers folder or .safetensors file, or a hub id.",
    )


def run_controls(kind: str) -> tuple[gr.Number, gr.Number, gr.Textbox]:
    """Steps, preview interval and artifact name, with element ids `<kind>-steps`, `<kind>-preview-every`, `<kind>-name`."""
    steps = gr.Number(
        200, label="steps", precision=0, minimum=1, maximum=MAX_STEPS, elem_id=f"{kind}-steps",
        info="Training steps (the papers use thousands on real models).",
    )  # fmt: skip
    preview_every = gr.Number(
        50, label="preview every", precision=0, minimum=0, elem_id=f"{kind}-preview-every",
        info="Steps between preview samples (0: none).",
    )  # fmt: skip
    name = gr.Textbox(
        "",
        label="artifact name",
        info="Its name in the library (default: method and data).",
        elem_id=f"{kind}-name",
    )
    return steps, preview_every, name


def run_params(studio, folder, model, method, steps, preview_every, name, options) -> dict:
    """The job parameters every diffusion training has (the tab adds its own).

    Raises:
        ValueError: steps or the preview interval out of bounds, a local model outside the allowed folders.
    """
    steps = number("steps", steps, minimum=1, maximum=MAX_STEPS, whole=True)
    return {
        "data": str(folder.relative_to(studio.workspace.root)),
        "model": studio.models.check("base model", model) or DEFAULT_PIPELINE,
        "method": method,
        "steps": steps,
        "preview_every": number("preview every", preview_every or 0, minimum=0, maximum=steps, whole=True),
        "name": name,
        "options": options or {},
    }
