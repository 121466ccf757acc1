"""Controls and job parameters that the diffusion training tabs (Personalize, Control) share."""

from __future__ import annotations

import gradio as gr

from diffusion.memory import MemoryOptions

from ..forms import number

DEFAULT_PIPELINE = "studio/shapes-sd"
MAX_STEPS = 100_000
# The GPU-memory presets of `diffusion.memory.MemoryOptions`, as offered.
GPU_MEMORY_LABELS = [
    ("auto (by the GPU)", "auto"),
    ("≥ 24 GB", "24"),
    ("16 GB", "16"),
    ("12 GB", "12"),
    ("8 GB", "8"),
    ("no saving", "none"),
]


def base_model_box(kind: str | None = None) -> gr.Textbox:
    """The base pipeline's name (element id `<kind>-model` when `kind` is given)."""
    return gr.Textbox(
        DEFAULT_PIPELINE,
        label="base model",
        info="The bundled studio/shapes-sd, or an SD 1.x/2.x or SDXL model: a diffusers folder or single "
        ".safetensors file in the workspace (a path relative to it) or in the studio's --models-dir, or a hub id.",
        elem_id=f"{kind}-model" if kind else None,
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


def gpu_memory_choice(kind: str) -> gr.Dropdown:
    """The GPU memory to fit the training in (element id `<kind>-gpu-memory`)."""
    return gr.Dropdown(
        GPU_MEMORY_LABELS,
        value="auto",
        label="GPU memory",
        elem_id=f"{kind}-gpu-memory",
        info="Smaller GPUs turn on gradient checkpointing, an 8-bit AdamW (with bitsandbytes) and keeping the "
        "VAE and text encoders off the GPU; frozen weights are held in half precision on any GPU.",
    )


def run_params(studio, folder, model, method, steps, preview_every, name, options, gpu_memory="auto") -> dict:
    """The job parameters every diffusion training has (the tab adds its own).

    Raises:
        ValueError: steps or the preview interval out of bounds, a local model outside the allowed folders, an
            unknown GPU-memory preset.
    """
    MemoryOptions.of(gpu_memory)
    steps = number("steps", steps, minimum=1, maximum=MAX_STEPS, whole=True)
    return {
        "data": str(folder.relative_to(studio.workspace.root)),
        "model": studio.models.check("base model", model) or DEFAULT_PIPELINE,
        "method": method,
        "steps": steps,
        "preview_every": number("preview every", preview_every or 0, minimum=0, maximum=steps, whole=True),
        "name": name,
        "options": options or {},
        "gpu_memory": gpu_memory,
    }
