"""Personalize tab: a few images of a concept (and maybe of more concepts, trained jointly), a registered
personalization method with its options, a live loss plot and previews."""

from __future__ import annotations

from typing import Any

import gradio as gr

from diffusion.concept import ConceptRun
from diffusion.personalize import DEFAULT_METHOD, method_options
from studio.core import method_configs

from ..errors import guarded
from ..forms import MethodForm, number, restore_on_load
from ..workspace import check_upload, list_images
from .progress import ProgressPanel
from .training import base_model_box, gpu_memory_choice, run_controls, run_params
from .uploads import upload_gallery

TITLE = "Personalize"
MAX_IMAGES = 50
DEFAULT_BATCH = 4
MAX_BATCH = 64
MORE_CONCEPTS = 2
"""How many more concepts the tab takes beside the first (trained jointly, one token each)."""


def methods() -> dict[str, type]:
    """The personalization methods the tab offers: name -> config class, from the registry."""
    return method_configs("diffusion", "personalize")


def start(
    studio,
    files,
    model,
    method,
    token,
    class_word,
    steps,
    preview_every,
    name,
    options=None,
    gpu_memory="auto",
    concepts=(),
) -> str:
    """Queue a personalization job; returns its id.

    Args:
        studio: the app's `Studio`.
        files: uploaded images (or zips of images) of the concept; 3–20 work best.
        model: the base pipeline (bundled name, local folder or file, hub id).
        method: a registered personalization method (`methods()`).
        token: the new token, e.g. `<my-cat>`.
        class_word: the concept's class (e.g. `cat`).
        steps: training steps.
        preview_every: steps between preview samples (0: none).
        name: the artifact's library name.
        options: more `diffusion.personalize` keywords: the method's config fields and run options
            (`batch_size`, ...).
        gpu_memory: the GPU-memory preset (`diffusion.memory.MemoryOptions`).
        concepts: more concepts learnt in the same run, `(files, token, class_word)` each; rows without files
            and token are left out.

    Raises:
        ValueError: no or too many images, an empty token, two concepts with one token, an unknown method or
            a bad option (e.g. Cut-Mix-Unmix with one concept).
    """
    more = [(f, _token(t), (w or "").strip()) for f, t, w in concepts or () if f or (t or "").strip()]
    # A bad option, or one the method cannot train with this many concepts, fails before anything is queued.
    method_options(method, None, {**(options or {}), "concepts": more})
    token = _token(token)
    # Two concepts with one token fail here, before anything is imported or queued.
    ConceptRun(token=token, concepts=[{"token": t} for _, t, _ in more])
    folder = _concept_folder(studio, files)
    params = run_params(studio, folder, model, method, steps, preview_every, name, options, gpu_memory)
    params.update(token=token, class_word=(class_word or "").strip())
    root = studio.workspace.root
    params["concepts"] = [
        {"token": t, "class_word": w, "data": str(_concept_folder(studio, f).relative_to(root))}
        for f, t, w in more
    ]
    params["name"] = name or f"{method}-{token.strip('<>')}"
    folders = [folder, *(studio.workspace.inside(c["data"]) for c in params["concepts"])]
    count = sum(len(list_images(f)) for f in folders)
    tokens = " ".join([token, *(t for _, t, _ in more)])
    return studio.jobs.submit("personalize", params, title=f"{method} {tokens} on {count} images").id


def _token(token) -> str:
    token = (token or "").strip()
    if not token or any(c.isspace() for c in token):
        raise ValueError("the token must be one word without spaces, e.g. <my-cat>")
    return token


def _concept_folder(studio, files):
    folder = studio.workspace.import_files(files, "concept")
    count = len(list_images(folder))
    if not 1 <= count <= MAX_IMAGES:
        raise ValueError(
            f"upload between 1 and {MAX_IMAGES} images of the concept (3–20 work best); got {count}"
        )
    return folder


def options_from_form(form: MethodForm, method: str, batch_size, values: list[Any]) -> dict[str, Any]:
    """The `diffusion.personalize` options the tab's option controls set, checked before anything is queued.

    Args:
        form: the tab's method options.
        method: the chosen method.
        batch_size: images per step.
        values: the values of `form.inputs`.

    Raises:
        ValueError: a number out of bounds or an option of the wrong type (one line naming it).
    """
    batch = number("batch size", batch_size, minimum=1, maximum=MAX_BATCH, whole=True)
    return {"batch_size": batch, **form.options(method, values)}


def _concept_values(concepts: list[dict]) -> list:
    """The token and class-word boxes of the more-concepts rows for a job's concepts (the rest untouched)."""
    values = [[c["token"], c["class_word"]] for c in concepts[:MORE_CONCEPTS]]
    values += [[gr.skip(), gr.skip()]] * (MORE_CONCEPTS - len(values))
    return [value for row in values for value in row]


def build(studio, timer: gr.Timer) -> None:
    """Lay out the tab and wire its events."""
    configs = methods()
    files = gr.File(
        label="images of your concept (3–20 work best), or a zip",
        file_count="multiple",
        file_types=["image", ".zip"],
        elem_id="personalize-files",
    )
    upload_gallery(files, "personalize-uploads")
    with gr.Row():
        model = base_model_box("personalize")
        method = gr.Radio(
            list(configs),
            value=DEFAULT_METHOD,
            label="method",
            info=" ".join(cls.__doc__.split("\n")[0] for cls in configs.values()),
            elem_id="personalize-method",
        )
    with gr.Row():
        token = gr.Textbox(
            "<my-concept>",
            label="token",
            info="The new placeholder token used in prompts, e.g. '<my-cat>'.",
            elem_id="personalize-token",
        )
        class_word = gr.Textbox(
            "shape",
            label="class word",
            info="The concept's class (e.g. 'cat'). Each method uses it its own way (in the prompts, or as the "
            "token's starting word); see its options.",
        )
        steps, preview_every, name = run_controls("personalize")
    with gr.Accordion("options", open=False), gr.Row():
        batch_size = gr.Number(
            DEFAULT_BATCH, label="batch size", precision=0, minimum=1, info="Images per step."
        )
        gpu_memory = gpu_memory_choice("personalize")
    more = []
    with gr.Accordion("more concepts (trained jointly, one token each)", open=False):
        for i in range(2, 2 + MORE_CONCEPTS):
            with gr.Row():
                more.append(
                    (
                        gr.File(
                            label=f"images of concept {i}",
                            file_count="multiple",
                            file_types=["image", ".zip"],
                        ),
                        gr.Textbox("", label=f"token {i}"),
                        gr.Textbox("", label=f"class word {i}"),
                    )
                )
    form = MethodForm(configs, DEFAULT_METHOD)
    train = gr.Button("Train", variant="primary", elem_id="personalize-train")
    panel = ProgressPanel(studio, ("personalize",), previews=True)

    def on_train(
        files, model, method, token, class_word, steps, preview_every, name, batch_size, memory, *values
    ):
        n = len(form.inputs)
        options = options_from_form(form, method, batch_size, list(values[:n]))
        concepts = [values[i : i + 3] for i in range(n, len(values), 3)]
        start(
            studio,
            files,
            model,
            method,
            token,
            class_word,
            steps,
            preview_every,
            name,
            options,
            memory,
            concepts,
        )
        return panel.redraw()

    def form_values(p: dict) -> list:
        options = dict(p.get("options", {}))
        return [
            p["model"], p["method"], p["token"], p["class_word"], p["steps"], p["preview_every"], p["name"],
            options.pop("batch_size", DEFAULT_BATCH), p.get("gpu_memory", "auto"), *form.values(p["method"], options),
            *_concept_values(p.get("concepts", [])),
        ]  # fmt: skip

    inputs = [files, model, method, token, class_word, steps, preview_every, name, batch_size, gpu_memory]
    inputs += form.inputs
    restore_on_load(panel.job, inputs[1:] + [box for _, *boxes in more for box in boxes], form_values)
    inputs += [control for row in more for control in row]
    files.upload(guarded(check_upload), files, None, show_progress="hidden")
    train.click(guarded(on_train), inputs, panel.outputs)
    method.change(form.show, method, list(form.groups.values()), queue=False)
    panel.bind(timer)
