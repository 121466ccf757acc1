"""Generate tab: prompt and sampling settings, any mix of trained artifacts, a gallery with each image's settings."""

from __future__ import annotations

import gradio as gr

from ..errors import guarded
from ..tasks.diffusion import PipelineCache, sample
from .training import DEFAULT_PIPELINE, base_model_box

TITLE = "Generate"


def adapter_choices(studio) -> list[tuple[str, str]]:
    """`(label, name)` of every diffusion artifact in the library, newest first."""
    entries = studio.library.entries(domain="diffusion")
    return [
        (f"{e.name} ({e.method}{', ' + e.extra['token'] if e.extra.get('token') else ''})", e.name)
        for e in entries
    ]


def base_model_of_choice(studio, names: list[str] | None, current: str) -> str:
    """The base model the chosen artifacts were trained on (they work only there), else `current`.

    Args:
        studio: the app's `Studio`.
        names: the library names picked in the artifacts box.
        current: what the base model box holds.
    """
    bases = {studio.library.get(name).base_model for name in names or []} - {None}
    return bases.pop() if len(bases) == 1 else current


def truncation_note(tokenizer, prompt: str) -> str:
    """A line for the user when `prompt` is longer than the text encoder reads ("" when it fits).

    Stable Diffusion pipelines cut a prompt to the tokenizer's `model_max_length` (77 for CLIP) and only log
    it; the user should see which words had no effect.
    """
    limit = tokenizer.model_max_length - 2  # the start and end markers take two places

    def tokens(text: str) -> int:
        return len(tokenizer(text, truncation=False).input_ids) - 2

    total = tokens(prompt)
    if total <= limit:
        return ""
    words = prompt.split()
    kept = max(k for k in range(len(words) + 1) if tokens(" ".join(words[:k])) <= limit)
    return (
        f"The prompt has {total} tokens and the text encoder reads {limit}: the words from "
        f'"{" ".join(words[kept:])}" on were cut and had no effect.'
    )


def build(studio, timer: gr.Timer) -> None:
    """Lay out the tab and wire its events."""
    cache = PipelineCache()
    with gr.Row():
        prompt = gr.Textbox(
            "a <my-concept> on a grey background",
            label="prompt",
            info="Use a trained token, e.g. 'a <my-cat> on a beach'.",
            scale=3,
            elem_id="generate-prompt",
        )
        negative = gr.Textbox(
            "", label="negative prompt", info="What to steer away from (used with guidance > 1).", scale=2
        )
    with gr.Row():
        model = base_model_box("generate")
        seed = gr.Number(0, label="seed", precision=0, info="The same seed and settings give the same image.")
        steps = gr.Slider(
            1, 100, 20, step=1, label="steps", info="Denoising steps.", elem_id="generate-steps"
        )
        guidance = gr.Slider(
            1.0, 15.0, 7.5, step=0.5, label="guidance", info="Classifier-free guidance scale; 1 disables it."
        )
    adapters = gr.Dropdown(
        adapter_choices(studio),
        multiselect=True,
        label="artifacts",
        elem_id="generate-adapters",
        info="Any mix: TI tokens, one SVDiff, ControlNets / T2I-Adapters (with a control image), an IP-Adapter (with a reference image). Picking them sets the base model they were trained on.",
    )
    with gr.Row():
        control_image = gr.Image(
            type="pil",
            label="control image (ControlNet / T2I-Adapter; a photo is converted by the artifact's extractor)",
            height=200,
            elem_id="generate-control",
        )
        ip_image = gr.Image(
            type="pil", label="reference image (IP-Adapter)", height=200, elem_id="generate-reference"
        )
    run = gr.Button("Generate", variant="primary", elem_id="generate-run")
    gallery = gr.Gallery(
        label="generated",
        columns=4,
        height="auto",
        object_fit="contain",
        fit_columns=False,
        format="png",
        elem_id="generate-gallery",
    )
    notes = gr.Markdown("", elem_id="generate-notes")
    history = gr.State([])
    seen = gr.State(None)

    def on_generate(
        prompt, negative, model, seed, steps, guidance, adapters, control_image, ip_image, history
    ):
        settings = {
            "model": (model or "").strip() or DEFAULT_PIPELINE,
            "prompt": prompt,
            "negative_prompt": negative,
            "seed": seed,  # raw: `sample` checks and bounds every number with a readable message
            "steps": steps,
            "guidance": guidance,
            "adapters": list(adapters or []),
        }
        new = sample(studio, cache, settings, control_image, ip_image)
        with cache.lock:  # the pipeline `sample` cached, under the model path it checked
            pipe = cache.get(studio.models.check("model", settings["model"]))
            note = truncation_note(pipe.tokenizer, prompt)
        history = new + list(history)
        return history, history, note

    def on_tick(previous):
        choices = adapter_choices(studio)
        if choices == previous:
            return gr.skip(), previous
        return gr.Dropdown(choices=choices), choices

    def on_pick(names, current):
        return base_model_of_choice(studio, names, current)

    inputs = [prompt, negative, model, seed, steps, guidance, adapters, control_image, ip_image, history]
    adapters.input(guarded(on_pick), [adapters, model], model, queue=False)
    run.click(guarded(on_generate), inputs, [gallery, history, notes])
    timer.tick(on_tick, seen, [adapters, seen], show_progress="hidden", queue=False)
